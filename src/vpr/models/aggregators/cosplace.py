"""CosPlace: GeM pooling followed by a linear projection (paper eq. 4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.gem import GeMPool
from vpr.models.aggregators.registry import register_aggregator


@register_aggregator("CosPlace")
class CosPlace(Aggregator):
    """L2 over channels -> GeM -> Linear(C, descriptors_dim) -> L2."""

    def __init__(
        self,
        in_channels: int,
        feature_size: tuple[int, int],
        descriptors_dim: int = 512,
        *,
        p: float = 3.0,
        eps: float = 1e-6,
    ) -> None:
        """Builds the GeM pooling and the projection to `descriptors_dim`."""
        super().__init__(in_channels, out_dim=descriptors_dim)
        self.pool = GeMPool(p, eps)
        self.projection = nn.Linear(in_channels, descriptors_dim)

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B,descriptors_dim) projection of the GeM-pooled features."""
        # Normalising each spatial descriptor first keeps a few strong locations from
        # dominating the pooled vector, as in CosPlace.
        features = F.normalize(features, p=2, dim=1)
        return self.projection(self.pool(features))
