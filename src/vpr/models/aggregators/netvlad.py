"""NetVLAD: soft-assigned residuals to learnable cluster centres, optionally projected."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.registry import register_aggregator


@register_aggregator("NetVLAD")
class NetVLAD(Aggregator):
    """Soft assignment -> residual sums per cluster -> intra-norm -> flatten -> L2 [-> Linear].

    The raw descriptor has clusters_num * C values (64 * 512 = 32768 for ResNet-18). When
    `descriptors_dim` is given and differs from that, it is L2-normalised and projected by a
    Linear layer to descriptors_dim (then L2 again); `descriptors_dim=None` keeps it raw.
    """

    def __init__(
        self,
        in_channels: int,
        feature_size: tuple[int, int],
        descriptors_dim: int | None = 512,
        *,
        clusters_num: int = 64,
    ) -> None:
        """Builds the assignment convolution, the centroids and the optional projection."""
        vlad_dim = clusters_num * in_channels
        project = descriptors_dim is not None and descriptors_dim != vlad_dim
        super().__init__(in_channels, out_dim=descriptors_dim if project else vlad_dim)
        self.clusters_num = clusters_num
        self.assignment = nn.Conv2d(in_channels, clusters_num, kernel_size=1)
        self.centroids = nn.Parameter(torch.rand(clusters_num, in_channels))
        self.projection = nn.Linear(vlad_dim, descriptors_dim) if project else None

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B,out_dim) VLAD vector, projected when configured."""
        # Local descriptors are L2-normalised so no location outweighs the others.
        features = F.normalize(features, p=2, dim=1)
        soft_assignment = F.softmax(self.assignment(features).flatten(2), dim=1)  # (B, K, N)
        descriptors = features.flatten(2)  # (B, C, N)
        # sum_n a_kn (x_n - c_k) = sum_n a_kn x_n - (sum_n a_kn) c_k, without a (B,K,C,N) tensor.
        weighted_sums = torch.bmm(soft_assignment, descriptors.transpose(1, 2))  # (B, K, C)
        residuals = weighted_sums - soft_assignment.sum(dim=2, keepdim=True) * self.centroids
        vlad = F.normalize(residuals, p=2, dim=2).flatten(1)  # intra-normalisation
        vlad = F.normalize(vlad, p=2, dim=1)
        if self.projection is not None:
            vlad = self.projection(vlad)
        return vlad
