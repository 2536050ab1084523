"""GeM: generalised-mean pooling with a learnable exponent (paper eq. 3)."""

from __future__ import annotations

import torch
from torch import nn

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.registry import register_aggregator


def gem_pool(features: torch.Tensor, p: torch.Tensor | float, eps: float = 1e-6) -> torch.Tensor:
    """Returns the (B,C) generalised mean (mean of x^p)^(1/p) over each channel's h*w values."""
    # The clamp keeps x^p defined for fractional p (ReLU features are >= 0 anyway).
    powered = features.clamp(min=eps).pow(p)
    return powered.mean(dim=(2, 3)).pow(1.0 / p)


class GeMPool(nn.Module):
    """GeM pooling with a learnable exponent p; maps (B,C,h,w) to (B,C)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        """Initialises the learnable exponent to `p`."""
        super().__init__()
        self.p = nn.Parameter(torch.tensor([float(p)]))
        self.eps = eps

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B,C) pooled features."""
        return gem_pool(features, self.p, self.eps)

    def extra_repr(self) -> str:
        """Shows the current exponent when the module is printed."""
        return f"p={self.p.item():.4f}, eps={self.eps}"


@register_aggregator("GeM")
class GeM(Aggregator):
    """GeM pooling then L2; the descriptor has one value per channel (out_dim = in_channels)."""

    def __init__(
        self,
        in_channels: int,
        feature_size: tuple[int, int],
        descriptors_dim: int = 512,
        *,
        p: float = 3.0,
        eps: float = 1e-6,
    ) -> None:
        """Builds the pooling; `descriptors_dim` is ignored since GeM has no projection."""
        super().__init__(in_channels, out_dim=in_channels)
        self.pool = GeMPool(p, eps)

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B,C) GeM-pooled features."""
        return self.pool(features)
