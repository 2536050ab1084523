"""CentroidTripletLoss, which pytorch-metric-learning removed in 2.0 (its issue #451).

The seed offered it by name, so we keep it, written from the paper's definition on top of
pml's ``TripletMarginLoss``.
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_metric_learning import losses
from pytorch_metric_learning.reducers import AvgNonZeroReducer


class CentroidTripletLoss(losses.BaseMetricLossFunction):
    """Triplet loss between each sample, its place's centroid and the other places' centroids.

    From "On the Unreasonable Effectiveness of Centroids in Image Retrieval" (Wieczorek et
    al., 2021): the positive is the mean of the *other* samples of the anchor's label, the
    negatives are the means of every other label. Every label needs at least 2 samples.
    """

    def __init__(
        self,
        margin: float = 0.05,
        swap: bool = False,
        smooth_loss: bool = False,
        triplets_per_anchor: int | str = "all",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.margin = margin
        # compute_loss passes every centroid triplet, so triplets_per_anchor is only recorded;
        # the wrapped loss shares this loss's distance (this loss's reducer reduces its output).
        self.triplet_loss = losses.TripletMarginLoss(
            margin=margin,
            swap=swap,
            smooth_loss=smooth_loss,
            triplets_per_anchor=triplets_per_anchor,
            distance=self.distance,
        )

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        """Builds centroid triplets and returns the wrapped TripletMarginLoss's loss dict."""
        if indices_tuple is not None:
            raise ValueError("CentroidTripletLoss builds its own triplets: pass no miner output")
        if ref_emb is not None and ref_emb is not embeddings:
            raise ValueError("CentroidTripletLoss does not support ref_emb")
        if labels is None:
            raise ValueError("CentroidTripletLoss needs labels")
        classes, label_idx, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        if int(counts.min()) < 2:
            singletons = classes[counts < 2].tolist()
            raise ValueError(
                f"CentroidTripletLoss needs >= 2 samples per label; these have 1: {singletons}"
            )
        num_samples, num_classes = embeddings.shape[0], classes.shape[0]
        one_hot = torch.nn.functional.one_hot(label_idx, num_classes).to(embeddings.dtype)
        class_sums = one_hot.T @ embeddings  # (C, D)
        class_centroids = class_sums / counts.to(embeddings.dtype).unsqueeze(1)
        # Leave the anchor out of its own positive centroid, as the paper does.
        positive_centroids = (class_sums[label_idx] - embeddings) / (
            counts[label_idx].to(embeddings.dtype).unsqueeze(1) - 1
        )
        all_embeddings = torch.cat([embeddings, positive_centroids, class_centroids])
        all_labels = torch.cat([labels, labels, classes])
        # Triplets: anchor i, positive N+i, negative 2N+c for every class c != label of i.
        anchor, negative_class = torch.nonzero(one_hot == 0, as_tuple=True)
        indices = (anchor, anchor + num_samples, negative_class + 2 * num_samples)
        return self.triplet_loss.compute_loss(all_embeddings, all_labels, indices, None, None)

    def get_default_reducer(self):
        """Averages over the triplets with a non-zero loss, as pml's triplet loss does."""
        return AvgNonZeroReducer()
