"""DINOv2 backbones on their own (facebookresearch/dinov2 `*_pretrain.pth` files).

The named model is the backbone with its class token (after the final norm) as the
descriptor, DINOv2's own global image representation, at DINOv2's 224 px evaluation size.
"""

from __future__ import annotations

from vpr.models.backbones.dinov2_keys import dinov2_to_ours
from vpr.models.pretrained.keymap import StateDict, rename_by_prefix
from vpr.models.pretrained.registry import PublishedModel, register_published_model

_WIDTHS = {"vits14": 384, "vitb14": 768, "vitl14": 1024, "vitg14": 1536}
_BASE_URL = "https://dl.fbaipublicfiles.com/dinov2"


def convert_dinov2(state_dict: StateDict) -> dict:
    """Maps a DINOv2 backbone file onto `backbone.*` (the class-token head has no weights)."""
    return rename_by_prefix(state_dict, [("", "backbone.")], layout="DINOv2 backbone",
                            sections={"": dinov2_to_ours})


for _size, _width in _WIDTHS.items():
    for _registers in (False, True):
        _variant = f"{_size}_reg" if _registers else _size
        _file = f"dinov2_{_size}{'_reg4' if _registers else ''}_pretrain.pth"
        register_published_model(PublishedModel(
            name="dinov2",
            variant=_variant,
            backbone=f"dinov2_{_variant}",
            agg_arch="ClassToken",
            descriptors_dim=_width,
            image_size=(224, 224),
            convert=convert_dinov2,
            weights=f"{_BASE_URL}/dinov2_{_size}/{_file}",
        ))
