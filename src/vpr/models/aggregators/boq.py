"""BoQ: a bag of learnable queries probing the local features (Ali-bey et al., CVPR 2024).

The feature map is projected (3x3 convolution), flattened to tokens and layer-normalised;
each block refines the tokens with a transformer encoder layer and lets its learnable
queries (first mixed among themselves by self-attention) read them by cross-attention.
The outputs of all blocks are stacked and a Linear layer mixes the num_layers*num_queries
rows down to `row_dim`, giving proj_channels x row_dim values.
"""

from __future__ import annotations

import torch
from torch import nn

from vpr.models.aggregators.base import Aggregator
from vpr.models.aggregators.registry import register_aggregator


class QueryBlock(nn.Module):
    """Encoder layer over the tokens + learnable queries that cross-attend to them."""

    def __init__(self, dim: int, num_queries: int, num_heads: int) -> None:
        """Builds the layers for `dim`-wide tokens and `num_queries` queries."""
        super().__init__()
        self.feature_encoder = nn.TransformerEncoderLayer(
            d_model=dim, nhead=num_heads, dim_feedforward=4 * dim, dropout=0.0, batch_first=True
        )
        self.queries = nn.Parameter(torch.randn(1, num_queries, dim))
        # Self-attention among the queries steadies training; in evaluation its output is a
        # constant that could be cached.
        self.query_attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.query_norm = nn.LayerNorm(dim)
        self.cross_attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.output_norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the refined (B,N,dim) tokens and the (B,num_queries,dim) query outputs."""
        tokens = self.feature_encoder(tokens)
        queries = self.queries.expand(tokens.shape[0], -1, -1)
        mixed, _ = self.query_attention(queries, queries, queries, need_weights=False)
        queries = self.query_norm(queries + mixed)
        read, _ = self.cross_attention(queries, tokens, tokens, need_weights=False)
        return tokens, self.output_norm(read)


@register_aggregator("BoQ")
class BoQ(Aggregator):
    """Projection -> query blocks -> row projection -> flatten (channel-major) -> L2.

    Published: ResNet-50 cut after layer3 (1024 channels), proj_channels=512,
    num_queries=64, num_layers=2, row_dim=32 -> 16384; DINOv2-B tokens before the final
    norm, proj_channels=384, row_dim=32 -> 12288. By default proj_channels is the smallest
    of 512, in_channels and descriptors_dim, and row_dim = descriptors_dim // proj_channels.
    """

    # The paper's ResNets drop their last stage.
    backbone_cut_after = "layer3"

    def __init__(
        self,
        in_channels: int,
        feature_size: tuple[int, int],
        descriptors_dim: int = 512,
        *,
        proj_channels: int | None = None,
        num_queries: int = 64,
        num_layers: int = 2,
        row_dim: int | None = None,
        num_heads: int | None = None,
    ) -> None:
        """Builds the input projection, `num_layers` query blocks and the row projection."""
        if proj_channels is None:
            proj_channels = min(512, in_channels, descriptors_dim)
        if row_dim is None:
            if descriptors_dim % proj_channels:
                raise ValueError(
                    f"BoQ: descriptors_dim={descriptors_dim} is not a multiple of "
                    f"proj_channels={proj_channels}; pass proj_channels/row_dim explicitly"
                )
            row_dim = descriptors_dim // proj_channels
        super().__init__(in_channels, out_dim=proj_channels * row_dim)
        num_heads = num_heads or max(1, proj_channels // 64)
        self.input_projection = nn.Conv2d(in_channels, proj_channels, kernel_size=3, padding=1)
        self.input_norm = nn.LayerNorm(proj_channels)
        self.blocks = nn.ModuleList(
            QueryBlock(proj_channels, num_queries, num_heads) for _ in range(num_layers)
        )
        self.row_projection = nn.Linear(num_layers * num_queries, row_dim)

    def aggregate(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the (B, proj_channels*row_dim) descriptor before the final L2."""
        tokens = self.input_norm(self.input_projection(features).flatten(2).transpose(1, 2))
        outputs = []
        for block in self.blocks:
            tokens, read = block(tokens)
            outputs.append(read)
        stacked = torch.cat(outputs, dim=1)  # (B, num_layers*num_queries, proj_channels)
        return self.row_projection(stacked.transpose(1, 2)).flatten(1)
