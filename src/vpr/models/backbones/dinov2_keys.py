"""DINOv2 backbone state dicts: the original facebookresearch/dinov2 layout -> ours (timm's).

Original keys (`dinov2_vitb14_pretrain.pth`, `dinov2_vitb14_reg4_pretrain.pth`, and the
backbone inside SALAD, BoQ and MegaLoc files) differ from timm's in four ways:
`mask_token` (used only by DINOv2's masked training, dropped); `register_tokens` (timm's
`reg_token`); the register models' class position, which timm folds into `cls_token`
(DINOv2 adds `pos_embed[:, 0]` to the class token before inserting the registers, so the sum
is the same number); SwiGLU `mlp.w12`/`mlp.w3` of ViT-g (timm's packed `mlp.fc1`/`mlp.fc2`).
Models built with `block_chunks > 0` store `blocks.<chunk>.<index>.` instead of
`blocks.<index>.`. Everything else keeps its name; a key we do not know passes through and is
then reported as unexpected by the strict check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

_CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.(.+)$")
# Every key a DINOv2 backbone file may hold (original or timm layout, chunked or not).
_KNOWN_KEY = re.compile(
    r"^(cls_token|pos_embed|mask_token|register_tokens|reg_token"
    r"|patch_embed\.proj\.(weight|bias)|norm\.(weight|bias)"
    r"|blocks\.(\d+\.)?\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2|mlp\.w12|mlp\.w3)"
    r"\.(weight|bias)"
    r"|blocks\.(\d+\.)?\d+\.(ls1|ls2)\.gamma)$"
)
_SWIGLU = {"mlp.w12.": "mlp.fc1.", "mlp.w3.": "mlp.fc2."}


def _block_key(key: str) -> str:
    """Renames a chunked block key and SwiGLU layer names; other keys are returned as is."""
    match = _CHUNKED_BLOCK.match(key)
    if match:
        key = f"blocks.{match.group(1)}.{match.group(2)}"
    for original, ours in _SWIGLU.items():
        key = key.replace(original, ours)
    return key


def dinov2_to_ours(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Maps a DINOv2 backbone state dict (original or timm layout) onto our ViT's keys.

    Raises:
        ValueError: `cls_token` or `pos_embed` is missing, or keys that no DINOv2 backbone
            has (listed).
    """
    missing = [key for key in ("cls_token", "pos_embed") if key not in state_dict]
    unknown = sorted(key for key in state_dict if not _KNOWN_KEY.match(key))
    if missing or unknown:
        raise ValueError(
            f"not a DINOv2 backbone state dict: missing {missing}, {len(unknown)} unknown keys "
            f"{unknown[:5]}"
        )
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key == "mask_token":
            continue
        if key == "register_tokens":
            converted["reg_token"] = value
            continue
        converted[_block_key(key)] = value
    if "register_tokens" in state_dict:
        # Original register model: its pos_embed still has the class position in front.
        converted["cls_token"] = state_dict["cls_token"] + state_dict["pos_embed"][:, :1]
        converted["pos_embed"] = state_dict["pos_embed"][:, 1:]
    return converted


def ours_to_dinov2(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of `dinov2_to_ours` into the original layout (unchunked; for tests/export).

    The class position of a register model is not recoverable from the folded sum, so it is
    written as zeros and the sum stays in `cls_token`; the model is the same function.
    """
    swiglu = _is_swiglu(state_dict)
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if swiglu and key.startswith("blocks."):
            for original, ours in _SWIGLU.items():
                key = key.replace(ours, original)
        converted[key] = value
    if "reg_token" in converted:
        converted["register_tokens"] = converted.pop("reg_token")
        positions = converted["pos_embed"]
        converted["pos_embed"] = torch.cat([torch.zeros_like(positions[:, :1]), positions], dim=1)
    embed_dim = converted["cls_token"].shape[-1]
    converted["mask_token"] = torch.zeros(1, embed_dim)
    return converted


def _is_swiglu(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for ViT-g, whose MLP is SwiGLU (fc1 twice as wide as fc2's input)."""
    fc1 = state_dict.get("blocks.0.mlp.fc1.weight")
    fc2 = state_dict.get("blocks.0.mlp.fc2.weight")
    return fc1 is not None and fc2 is not None and fc1.shape[0] == 2 * fc2.shape[1]
