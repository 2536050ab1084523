"""Conv-AP: channel-wise 1x1 convolution then adaptive average pooling (paper eq. 5-6)."""

from __future__ import annotations

import torch
from torch import nn

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.registry import register_aggregator


@register_aggregator("ConvAP")
class ConvAP(Aggregator):
    """Conv1x1(C -> d) -> AdaptiveAvgPool(s1, s2) -> flatten -> L2; out_dim = d * s1 * s2.

    By default d = descriptors_dim // (s1 * s2), so descriptors_dim sets the output size
    (512 -> 128 channels x 2 x 2). An explicit `out_channels` overrides descriptors_dim.
    """

    def __init__(
        self,
        in_channels: int,
        feature_size: tuple[int, int],
        descriptors_dim: int = 512,
        *,
        out_channels: int | None = None,
        s1: int = 2,
        s2: int = 2,
    ) -> None:
        """Builds the 1x1 convolution and the s1 x s2 pooling."""
        if out_channels is None:
            if descriptors_dim % (s1 * s2) != 0:
                raise ValueError(
                    f"ConvAP: descriptors_dim={descriptors_dim} is not divisible by "
                    f"s1*s2={s1 * s2}; pass out_channels explicitly"
                )
            out_channels = descriptors_dim // (s1 * s2)
        super().__init__(in_channels, out_dim=out_channels * s1 * s2)
        self.channel_pool = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.spatial_pool = nn.AdaptiveAvgPool2d((s1, s2))

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B, d*s1*s2) flattened pooled map."""
        return self.spatial_pool(self.channel_pool(features)).flatten(1)
