"""ConvGeM: 1x1 convolution, GeM pooling and a linear projection (paper eq. 7)."""

from __future__ import annotations

import torch
from torch import nn

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.gem import GeMPool
from vpr.models.aggregators.registry import register_aggregator


@register_aggregator("ConvGeM")
class ConvGeM(Aggregator):
    """Conv1x1(C -> conv_channels) -> GeM -> Linear(conv_channels, descriptors_dim) -> L2."""

    def __init__(
        self,
        in_channels: int,
        feature_size: tuple[int, int],
        descriptors_dim: int = 512,
        *,
        conv_channels: int | None = None,
        p: float = 3.0,
        eps: float = 1e-6,
    ) -> None:
        """Builds the convolution (conv_channels defaults to in_channels), GeM and projection."""
        super().__init__(in_channels, out_dim=descriptors_dim)
        conv_channels = in_channels if conv_channels is None else conv_channels
        self.channel_pool = nn.Conv2d(in_channels, conv_channels, kernel_size=1)
        self.pool = GeMPool(p, eps)
        # The projection reads the convolution's output, so its width is conv_channels, not C.
        self.projection = nn.Linear(conv_channels, descriptors_dim)

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B,descriptors_dim) projection of the GeM-pooled convolved features."""
        return self.projection(self.pool(self.channel_pool(features)))
