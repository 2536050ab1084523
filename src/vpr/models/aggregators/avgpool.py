"""The seed's plain ResNet head: global average pooling and a linear projection."""

from __future__ import annotations

import torch
from torch import nn

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.registry import register_aggregator


@register_aggregator("avgpool")
class AvgPool(Aggregator):
    """Global average pool -> Linear(C, descriptors_dim) -> L2."""

    def __init__(
        self, in_channels: int, feature_size: tuple[int, int], descriptors_dim: int = 512
    ) -> None:
        """Builds the projection from `in_channels` to `descriptors_dim`."""
        super().__init__(in_channels, out_dim=descriptors_dim)
        self.projection = nn.Linear(in_channels, descriptors_dim)

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B,descriptors_dim) projected channel means."""
        return self.projection(features.mean(dim=(2, 3)))
