"""The backbone's global token as the descriptor: a ViT's class token, a ResNet's mean."""

from __future__ import annotations

import torch

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.registry import register_aggregator


@register_aggregator("ClassToken")
class ClassToken(Aggregator):
    """L2(global token); out_dim = in_channels and there are no weights.

    This is DINOv2's own image descriptor (the class token after the final norm); on a
    ResNet it equals average pooling.
    """

    uses_class_token = True

    def __init__(
        self, in_channels: int, feature_size: tuple[int, int], descriptors_dim: int = 512
    ) -> None:
        """`descriptors_dim` is ignored: the descriptor is the token itself."""
        super().__init__(in_channels, out_dim=in_channels)

    def aggregate_with_token(
        self, features: torch.Tensor, class_token: torch.Tensor
    ) -> torch.Tensor:
        """Returns the (B,C) token."""
        return class_token
