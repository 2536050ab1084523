"""Backbones by exact name: ResNets (torchvision) and DINOv2 ViTs (timm)."""

from __future__ import annotations

from pathlib import Path

from vpr.models.backbones.base import Backbone
from vpr.models.backbones.resnet import RESNET_NAMES, build_resnet
from vpr.models.backbones.vit import VIT_ARCHITECTURES, build_vit


def list_backbones() -> list[str]:
    """Returns the names accepted by `build_backbone`."""
    return [*RESNET_NAMES, *VIT_ARCHITECTURES]


def is_vit(name: str) -> bool:
    """True when `name` (exact, case-insensitive) is a ViT backbone."""
    return name.strip().lower() in VIT_ARCHITECTURES


def _resolve_name(name: str) -> str:
    """Returns the canonical backbone name for `name` (exact, case-insensitive) or raises."""
    canonical = name.strip().lower()
    if canonical not in list_backbones():
        raise ValueError(f"Unknown backbone {name!r}; valid names: {', '.join(list_backbones())}")
    return canonical


def build_backbone(
    name: str = "resnet18",
    pretrained: str | Path = "imagenet",
    cut_after: str = "layer4",
    *,
    train_blocks: int | None = None,
    grad_checkpointing: bool = False,
    final_norm: bool = True,
    depth: int | None = None,
) -> Backbone:
    """Builds a backbone by exact name.

    Args:
        name: one of `list_backbones()`, matched exactly and case-insensitively.
        pretrained: "none" for random initialisation or the path of a weights file; for a
            ResNet also "imagenet" (torchvision's DEFAULT weights).
        cut_after: for a ResNet, the last residual stage kept ("layer2"/"layer3"/"layer4");
            a ViT always gives its last block's tokens.
        train_blocks: fine-tune only the last N blocks (ViT, + final norm) or residual
            stages (ResNet); None trains everything.
        grad_checkpointing: ViT only: recompute block activations in the backward pass.
        final_norm: ViT only: apply the final LayerNorm (False gives the raw last block).
        depth: ViT only: keep only the first N blocks (small experiment models).

    Returns:
        The backbone, with `out_channels`, `feature_size(image_size)` and
        `forward_features(images) -> (feature_map, global_token)`.
    """
    canonical = _resolve_name(name)
    if canonical in VIT_ARCHITECTURES:
        return build_vit(canonical, pretrained, train_blocks=train_blocks,
                         grad_checkpointing=grad_checkpointing, final_norm=final_norm,
                         depth=depth)
    if grad_checkpointing or not final_norm or depth is not None:
        raise ValueError(
            f"grad_checkpointing, final_norm and depth apply to ViT backbones, not {canonical}"
        )
    return build_resnet(canonical, pretrained, cut_after, train_blocks=train_blocks)
