"""MixVPR: a stack of MLP feature mixers over flattened feature maps (paper eq. 8-11)."""

from __future__ import annotations

import torch
from torch import nn

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.registry import register_aggregator


class FeatureMixer(nn.Module):
    """One isotropic MLP block over each flattened map: X <- W2 relu(W1 norm(X)) + X (eq. 8)."""

    def __init__(self, num_positions: int, mlp_ratio: int = 1) -> None:
        """Builds the MLP over `num_positions` = h*w values with a hidden width h*w*mlp_ratio."""
        super().__init__()
        self.mlp = nn.Sequential(
            nn.LayerNorm(num_positions),
            nn.Linear(num_positions, num_positions * mlp_ratio),
            nn.ReLU(),
            nn.Linear(num_positions * mlp_ratio, num_positions),
        )

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Returns the mixed (B,C,h*w) maps, same shape as the input."""
        return maps + self.mlp(maps)


@register_aggregator("MixVPR")
class MixVPR(Aggregator):
    """Feature mixers -> channel projection (eq. 10) -> row projection (eq. 11) -> flatten -> L2.

    The MLPs act on h*w positions, so the module is tied to the `feature_size` it was built
    for. The paper feeds it a ResNet-18 cut after layer2 (last two stages removed), which is
    what `build_model` does via `backbone_cut_after`. By default out_rows = 4 and
    out_channels = descriptors_dim // out_rows, so out_dim = out_channels * out_rows.
    """

    backbone_cut_after = "layer2"

    def __init__(
        self,
        in_channels: int,
        feature_size: tuple[int, int],
        descriptors_dim: int = 512,
        *,
        mix_depth: int = 4,
        mlp_ratio: int = 1,
        out_channels: int | None = None,
        out_rows: int = 4,
        row_bias: bool = True,
    ) -> None:
        """Builds `mix_depth` mixers and the two projections for a (C, h, w) input.

        `row_bias=False` drops the bias of the row projection, as in the authors' published
        MixVPR weights (their row projection has none).
        """
        if out_channels is None:
            if descriptors_dim % out_rows != 0:
                raise ValueError(
                    f"MixVPR: descriptors_dim={descriptors_dim} is not divisible by "
                    f"out_rows={out_rows}; pass out_channels explicitly"
                )
            out_channels = descriptors_dim // out_rows
        super().__init__(in_channels, out_dim=out_channels * out_rows)
        self.feature_size = (int(feature_size[0]), int(feature_size[1]))
        num_positions = self.feature_size[0] * self.feature_size[1]
        self.mixers = nn.Sequential(
            *(FeatureMixer(num_positions, mlp_ratio) for _ in range(mix_depth))
        )
        self.channel_projection = nn.Linear(in_channels, out_channels)
        self.row_projection = nn.Linear(num_positions, out_rows, bias=row_bias)
        self._init_linear_layers()

    def _init_linear_layers(self) -> None:
        """Starts every Linear with small weights and zero bias."""
        # Small weights keep each residual mixer close to the identity at the start of training.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B, out_channels*out_rows) flattened projections."""
        if tuple(features.shape[2:]) != self.feature_size:
            raise ValueError(
                f"MixVPR was built for feature maps of size {self.feature_size}, got "
                f"{tuple(features.shape[2:])}; rebuild it for this image size"
            )
        mixed = self.mixers(features.flatten(2))  # (B, C, h*w), eq. 9
        channels = self.channel_projection(mixed.transpose(1, 2))  # (B, h*w, out_channels)
        rows = self.row_projection(channels.transpose(1, 2))  # (B, out_channels, out_rows)
        return rows.flatten(1)
