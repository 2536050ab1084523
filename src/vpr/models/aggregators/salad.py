"""SALAD: optimal-transport aggregation of local features (Izquierdo & Civera, CVPR 2024).

Each local feature gets a score per cluster from a small MLP; an entropic optimal-transport
problem (log-domain Sinkhorn) turns the scores into an assignment where every feature
distributes one unit of mass over the clusters and a learnable "dustbin" row, which absorbs
the mass of uninformative features. A second MLP reduces each feature to `cluster_dim`
values; these are summed per cluster with the assignment weights, normalised per cluster,
and concatenated after a global scene token (an MLP on the backbone's class token).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.registry import register_aggregator


def log_sinkhorn(scores: torch.Tensor, dustbin: torch.Tensor, iterations: int) -> torch.Tensor:
    """Returns the log transport plan between m clusters (+ dustbin) and n features.

    The rows of the (B, m+1, n) cost-free coupling exp(scores) (the dustbin row is the
    constant `dustbin`) are scaled alternately so that the rows carry the masses
    (1, ..., 1, n-m) and the columns (1, ..., 1), all divided by m+n; `iterations` row/column
    updates are made (3 in the paper), the last one being a column update, so the columns
    always match exactly. The returned plan is multiplied back by m+n, so a feature's masses
    sum to 1.

    Args:
        scores: (B, m, n) feature-to-cluster scores.
        dustbin: the scalar score of the dustbin row.
        iterations: Sinkhorn iterations.

    Returns:
        (B, m+1, n) log masses; the last row is the dustbin.
    """
    batch, clusters, features = scores.shape
    couplings = torch.cat([scores, dustbin.to(scores).expand(batch, 1, features)], dim=1)
    log_total = -math.log(clusters + features)
    # The paper assumes more features than clusters; on smaller maps the dustbin keeps the
    # mass of one feature so the logarithm stays finite.
    dustbin_mass = math.log(max(features - clusters, 1))
    log_rows = scores.new_full((clusters + 1,), log_total)
    log_rows[-1] = log_rows[-1] + dustbin_mass
    log_columns = scores.new_full((features,), log_total)
    row_scale = torch.zeros_like(couplings[:, :, 0])
    column_scale = torch.zeros_like(couplings[:, 0, :])
    for _ in range(iterations):
        row_scale = log_rows - torch.logsumexp(couplings + column_scale.unsqueeze(1), dim=2)
        column_scale = log_columns - torch.logsumexp(couplings + row_scale.unsqueeze(2), dim=1)
    return couplings + row_scale.unsqueeze(2) + column_scale.unsqueeze(1) - log_total


def _pointwise_mlp(
    in_channels: int, hidden: int, out_channels: int, dropout: float
) -> nn.Sequential:
    """A two-layer MLP applied at every position of a (B,C,h,w) map (1x1 convolutions)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, kernel_size=1),
        nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
        nn.ReLU(),
        nn.Conv2d(hidden, out_channels, kernel_size=1),
    )


@register_aggregator("SALAD")
class SALAD(Aggregator):
    """Score MLP -> Sinkhorn assignment -> weighted sums of reduced features, + scene token.

    The raw descriptor is [L2(token) (token_dim), L2-per-cluster sums (cluster_dim x
    num_clusters, channel-major)], L2-normalised: 256 + 128 * 64 = 8448 values with the
    defaults (the published DINOv2-B model). When `descriptors_dim` is given and differs,
    a Linear projection follows (MegaLoc's head: 16640 -> 8448); None keeps the raw size.
    The global token is the backbone's class token (a ViT) or the mean feature (a ResNet).
    """

    uses_class_token = True

    def __init__(
        self,
        in_channels: int,
        feature_size: tuple[int, int],
        descriptors_dim: int | None = None,
        *,
        num_clusters: int = 64,
        cluster_dim: int = 128,
        token_dim: int = 256,
        hidden_dim: int = 512,
        dropout: float = 0.3,
        sinkhorn_iterations: int = 3,
    ) -> None:
        """Builds the three MLPs, the dustbin score and the optional projection."""
        raw_dim = num_clusters * cluster_dim + token_dim
        project = descriptors_dim is not None and descriptors_dim != raw_dim
        super().__init__(in_channels, out_dim=descriptors_dim if project else raw_dim)
        self.num_clusters = num_clusters
        self.sinkhorn_iterations = sinkhorn_iterations
        self.score_mlp = _pointwise_mlp(in_channels, hidden_dim, num_clusters, dropout)
        self.cluster_mlp = _pointwise_mlp(in_channels, hidden_dim, cluster_dim, dropout)
        self.token_mlp = nn.Sequential(
            nn.Linear(in_channels, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, token_dim)
        )
        self.dustbin = nn.Parameter(torch.tensor(1.0))
        self.projection = nn.Linear(raw_dim, descriptors_dim) if project else None

    def assignment(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B, num_clusters, h*w) transport masses (the dustbin row dropped)."""
        scores = self.score_mlp(features).flatten(2)
        log_plan = log_sinkhorn(scores, self.dustbin, self.sinkhorn_iterations)
        return log_plan[:, :-1].exp()

    def aggregate_with_token(
        self, features: torch.Tensor, class_token: torch.Tensor
    ) -> torch.Tensor:
        """Returns the (B, out_dim) descriptor (normalised already, unless projected)."""
        reduced = self.cluster_mlp(features).flatten(2)  # (B, cluster_dim, n)
        masses = self.assignment(features)  # (B, num_clusters, n)
        clusters = torch.bmm(reduced, masses.transpose(1, 2))  # (B, cluster_dim, num_clusters)
        clusters = F.normalize(clusters, p=2, dim=1).flatten(1)
        token = F.normalize(self.token_mlp(class_token), p=2, dim=-1)
        descriptor = F.normalize(torch.cat([token, clusters], dim=-1), p=2, dim=-1)
        if self.projection is not None:
            descriptor = self.projection(descriptor)
        return descriptor
