"""The base class every aggregator derives from: shape checks and the final L2 norm."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


class Aggregator(nn.Module):
    """Maps a feature map (B,C,h,w) to L2-normalised descriptors (B,out_dim).

    Subclasses implement `aggregate`; `forward` checks the input and normalises the output,
    so no aggregator can forget the final L2 norm.
    """

    # Which ResNet stage the aggregator expects its features from; the model builder reads it.
    backbone_cut_after: ClassVar[str] = "layer4"
    # The name the class was registered under, as spelled there; set by `register_aggregator`.
    registry_name: ClassVar[str] = ""
    # Aggregators that also read the backbone's global token (a ViT's class token, a ResNet's
    # mean feature) set this and implement `aggregate_with_token`.
    uses_class_token: ClassVar[bool] = False

    def __init__(self, in_channels: int, out_dim: int) -> None:
        """Stores the input width and the descriptor size."""
        super().__init__()
        self.in_channels = in_channels
        self.out_dim = out_dim

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the unnormalised (B,out_dim) descriptors of a (B,C,h,w) feature map."""
        raise NotImplementedError

    def aggregate_with_token(
        self, features: torch.Tensor, class_token: torch.Tensor
    ) -> torch.Tensor:
        """Returns the unnormalised descriptors of a feature map and its (B,C) global token."""
        raise NotImplementedError

    def forward(
        self, features: torch.Tensor, class_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns the L2-normalised (B,out_dim) descriptors of a (B,C,h,w) feature map.

        Args:
            features: the backbone's feature map.
            class_token: the backbone's (B,C) global token, read by aggregators with
                `uses_class_token`; when not given they use the map's spatial mean (which
                is what a ResNet backbone gives).
        """
        if features.dim() != 4 or features.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects features of shape (B, {self.in_channels}, h, w), "
                f"got {tuple(features.shape)}"
            )
        if not self.uses_class_token:
            return F.normalize(self.aggregate(features), p=2, dim=1)
        if class_token is None:
            class_token = features.mean(dim=(2, 3))
        return F.normalize(self.aggregate_with_token(features, class_token), p=2, dim=1)

    def extra_repr(self) -> str:
        """Shows the input and output widths when the module is printed."""
        return f"in_channels={self.in_channels}, out_dim={self.out_dim}"
