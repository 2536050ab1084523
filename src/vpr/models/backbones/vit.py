"""DINOv2 vision transformers (timm modules, never downloaded) as feature-map backbones."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from vpr.models.backbones.base import Backbone, check_state_dict, read_state_dict_file
from vpr.models.backbones.dinov2_keys import dinov2_to_ours

PATCH_SIZE = 14


@dataclass(frozen=True)
class ViTArchitecture:
    """How to build one DINOv2 architecture and interpolate its position embeddings.

    Attributes:
        timm_name: the timm model that has the same modules.
        interpolate_offset: DINOv2 resizes its 37x37 position grid with a scale factor of
            (n + offset) / 37 (0.1 for the original models) or, with 0, to size n.
        interpolate_antialias: antialiased bicubic resizing (the register models use it).
    """

    timm_name: str
    interpolate_offset: float
    interpolate_antialias: bool


# The interpolation settings are those of facebookresearch/dinov2 hub/backbones.py, so that
# published weights give the authors' features at any input size, not only at 518 px.
VIT_ARCHITECTURES: dict[str, ViTArchitecture] = {
    **{
        f"dinov2_vit{size}14": ViTArchitecture(f"vit_{timm_size}_patch14_dinov2", 0.1, False)
        for size, timm_size in (("s", "small"), ("b", "base"), ("l", "large"), ("g", "giant"))
    },
    **{
        f"dinov2_vit{size}14_reg": ViTArchitecture(
            f"vit_{timm_size}_patch14_reg4_dinov2", 0.0, True
        )
        for size, timm_size in (("s", "small"), ("b", "base"), ("l", "large"), ("g", "giant"))
    },
}


class ViTBackbone(Backbone):
    """A DINOv2 ViT: (B,3,H,W) -> (B,C,H/14,W/14) patch tokens after the final norm.

    The parameters keep timm's names (`cls_token`, `reg_token`, `pos_embed`, `patch_embed`,
    `blocks.N`, `norm`), so a timm state dict loads as is; `dinov2_keys` maps the original
    facebookresearch/dinov2 files. The global token is the class token (after the norm).
    """

    def __init__(
        self,
        name: str,
        architecture: ViTArchitecture,
        *,
        grad_checkpointing: bool = False,
        final_norm: bool = True,
        depth: int | None = None,
        init_weights: bool = True,
    ) -> None:
        """Builds the timm model with random weights and keeps its encoder parts.

        Args:
            name: our registry name, e.g. "dinov2_vitb14".
            architecture: the timm model and the position interpolation settings.
            grad_checkpointing: recompute each trained block in the backward pass (memory).
            final_norm: apply the final LayerNorm to the output tokens (BoQ reads the
                tokens before it; the norm's weights are kept either way).
            depth: keep only this many blocks (small test and experiment models).
            init_weights: run timm's initialisation (truncated normals: seconds for ViT-B);
                False when the weights are loaded from a file right after.
        """
        options = {} if depth is None else {"depth": int(depth)}
        if not init_weights:
            options["weight_init"] = "skip"
        vit = timm.create_model(
            architecture.timm_name, pretrained=False, num_classes=0, dynamic_img_size=True,
            **options,
        )
        super().__init__(name, int(vit.embed_dim))
        self.patch_embed = vit.patch_embed
        self.cls_token = vit.cls_token
        self.reg_token = vit.reg_token  # None without registers
        self.pos_embed = vit.pos_embed
        self.blocks = vit.blocks
        self.norm = vit.norm
        for block in self.blocks:
            block.attn.fused_attn = True  # F.scaled_dot_product_attention
        self.num_registers = 0 if self.reg_token is None else int(self.reg_token.shape[1])
        # timm's register models fold the class token's position into cls_token.
        self.class_has_position = not vit.no_embed_class
        self.base_grid = tuple(int(n) for n in vit.patch_embed.grid_size)
        self.interpolate_offset = architecture.interpolate_offset
        self.interpolate_antialias = architecture.interpolate_antialias
        self.grad_checkpointing = grad_checkpointing
        self.final_norm = final_norm
        self.first_trained_block = 0

    def feature_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Returns (H/14, W/14); a side that is not a multiple of 14 is a ValueError."""
        height, width = (int(side) for side in image_size)
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(
                f"{self.name} needs image sides that are multiples of {PATCH_SIZE} px, got "
                f"{height}x{width}; use e.g. image_size {height // PATCH_SIZE * PATCH_SIZE}x"
                f"{width // PATCH_SIZE * PATCH_SIZE}"
            )
        return height // PATCH_SIZE, width // PATCH_SIZE

    def position_embeddings(
        self, grid: tuple[int, int]
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Returns the class position (or None) and the (1, h*w, C) patch positions for `grid`.

        The 37x37 grid learnt at 518 px is resized by bicubic interpolation in fp32, as
        DINOv2 does (including its 0.1 offset on the scale factor for the original models).
        """
        positions = self.pos_embed.float()
        class_position = positions[:, :1] if self.class_has_position else None
        patch_positions = positions[:, 1:] if self.class_has_position else positions
        if tuple(grid) == self.base_grid:
            return class_position, patch_positions
        rows, cols = self.base_grid
        channels = patch_positions.shape[-1]
        patch_grid = patch_positions.reshape(1, rows, cols, channels).permute(0, 3, 1, 2)
        if self.interpolate_offset:
            size_or_scale = {"scale_factor": (
                (grid[0] + self.interpolate_offset) / rows,
                (grid[1] + self.interpolate_offset) / cols,
            )}
        else:
            size_or_scale = {"size": tuple(grid)}
        patch_grid = F.interpolate(
            patch_grid, mode="bicubic", antialias=self.interpolate_antialias, **size_or_scale
        )
        if tuple(patch_grid.shape[-2:]) != tuple(grid):
            raise RuntimeError(f"position grid resized to {tuple(patch_grid.shape[-2:])}, not "
                               f"{grid}")
        return class_position, patch_grid.permute(0, 2, 3, 1).reshape(1, -1, channels)

    def _tokens(self, images: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Returns the (B, 1+R+h*w, C) input tokens: class, registers, patches + positions."""
        batch = images.shape[0]
        patches = self.patch_embed(images).reshape(batch, grid[0] * grid[1], -1)
        class_position, patch_positions = self.position_embeddings(grid)
        patches = patches + patch_positions.to(patches.dtype)
        class_token = self.cls_token
        if class_position is not None:
            class_token = class_token + class_position.to(class_token.dtype)
        prefix = [class_token.expand(batch, -1, -1)]
        if self.reg_token is not None:
            prefix.append(self.reg_token.expand(batch, -1, -1))
        return torch.cat([*prefix, patches], dim=1)

    def _run_block(self, block: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, tokens, use_reentrant=False)
        return block(tokens)

    def forward_features(
        self, images: torch.Tensor, *, fp32_tail: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the (B,C,h,w) patch-token map and the (B,C) class token; see `Backbone`.

        With `fp32_tail`, the last block and the final norm run in fp32.
        """
        grid = self.feature_size(tuple(images.shape[-2:]))
        blocks = list(self.blocks)
        tail = [blocks.pop()] if fp32_tail else []
        # Frozen blocks record no graph: fine-tuning the last blocks costs their memory only.
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.first_trained_block == 0):
            tokens = self._tokens(images, grid)
            for block in blocks[: self.first_trained_block]:
                tokens = block(tokens)
        for block in blocks[self.first_trained_block :]:
            tokens = self._run_block(block, tokens)
        with torch.autocast(images.device.type, enabled=False) if fp32_tail else nullcontext():
            tokens = tokens.float() if fp32_tail else tokens
            for block in tail:
                tokens = block(tokens)
            if self.final_norm:
                tokens = self.norm(tokens)
        class_token = tokens[:, 0]
        patches = tokens[:, 1 + self.num_registers :]
        feature_map = patches.reshape(images.shape[0], *grid, -1).permute(0, 3, 1, 2)
        return feature_map, class_token

    def set_train_blocks(self, train_blocks: int | None) -> None:
        """Fine-tunes only the last `train_blocks` blocks and the final norm; None: all.

        The rest (patch embedding, tokens, position embeddings, earlier blocks) gets no
        gradient and stays in eval mode; 0 freezes the whole backbone.
        """
        if train_blocks is None:
            return
        depth = len(self.blocks)
        if not 0 <= train_blocks <= depth:
            raise ValueError(
                f"train_blocks={train_blocks} is out of range for {self.name}: 0..{depth}"
            )
        self.first_trained_block = depth - train_blocks
        modules = ("patch_embed", *(f"blocks.{i}" for i in range(self.first_trained_block)))
        parameters = ["cls_token", "pos_embed"]
        if self.reg_token is not None:
            parameters.append("reg_token")
        if train_blocks == 0:
            modules += ("norm",)
        self.freeze(modules, tuple(parameters))


def load_vit_file(path: Path, backbone: ViTBackbone) -> None:
    """Loads a DINOv2 backbone file (original facebookresearch or timm layout), strictly."""
    try:
        state_dict = dinov2_to_ours(read_state_dict_file(path))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    check_state_dict(state_dict, backbone, f"{path} does not fit {backbone.name}")
    backbone.load_state_dict(state_dict)


def build_vit(
    name: str,
    pretrained: str | Path = "none",
    *,
    train_blocks: int | None = None,
    grad_checkpointing: bool = False,
    final_norm: bool = True,
    depth: int | None = None,
) -> ViTBackbone:
    """Builds a DINOv2 ViT backbone.

    Args:
        name: a key of `VIT_ARCHITECTURES`.
        pretrained: "none" (random weights) or a DINOv2 backbone file, e.g.
            dinov2_vitb14_pretrain.pth (original layout) or a timm state dict.
        train_blocks: fine-tune only the last N blocks (+ final norm); None: all.
        grad_checkpointing: recompute activations of trained blocks in the backward pass.
        final_norm: apply the final LayerNorm to the output tokens.
        depth: keep only the first N blocks (None: the architecture's depth).
    """
    keyword = str(pretrained).strip().lower()
    if keyword == "imagenet":
        raise ValueError(
            f"pretrained='imagenet' does not exist for {name}; pass pretrained='none' (random "
            f"weights) or the path of a DINOv2 backbone file such as {name}_pretrain.pth"
        )
    backbone = ViTBackbone(
        name, VIT_ARCHITECTURES[name], grad_checkpointing=grad_checkpointing,
        final_norm=final_norm, depth=depth, init_weights=keyword == "none",
    )
    if keyword != "none":
        load_vit_file(Path(pretrained).expanduser(), backbone)
    backbone.set_train_blocks(train_blocks)
    return backbone
