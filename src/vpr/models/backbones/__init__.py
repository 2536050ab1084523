"""Backbones: images (B,3,H,W) -> feature maps (B,C,h,w), by exact name.

ResNets come from torchvision (`resnet.py`), DINOv2 ViTs from timm (`vit.py`, random
weights; trained weights come from files). Every backbone keeps the `Backbone` contract.
"""

from vpr.models.backbones.base import Backbone, check_state_dict, read_state_dict_file
from vpr.models.backbones.registry import build_backbone, is_vit, list_backbones
from vpr.models.backbones.resnet import (
    CUT_POINTS,
    RESNET_NAMES,
    PretrainedWeightsError,
    ResNetBackbone,
)
from vpr.models.backbones.vit import VIT_ARCHITECTURES, ViTBackbone

__all__ = [
    "CUT_POINTS",
    "RESNET_NAMES",
    "VIT_ARCHITECTURES",
    "Backbone",
    "PretrainedWeightsError",
    "ResNetBackbone",
    "ViTBackbone",
    "build_backbone",
    "check_state_dict",
    "is_vit",
    "list_backbones",
    "read_state_dict_file",
]
