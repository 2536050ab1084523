"""BoQ (amaralibey/Bag-of-Queries): ResNet-50 16384-D and DINOv2-B 12288-D.

Upstream keys: `backbone.net.{0,1,4,5,6}` (a torchvision ResNet-50's conv1, bn1, layer1-3 in
an nn.Sequential; layer4 is cropped) or `backbone.dino.*` (facebookresearch/dinov2 ViT-B/14
whose tokens are read before the final norm); `aggregator.{proj_c, norm_input, fc}` and
`aggregator.boqs.N.{encoder, queries, self_attn, norm_q, cross_attn, norm_out}`. Their
README evaluates ResNet-50 at 384x384 and DINOv2 at 322x322, ImageNet normalisation.
"""

from __future__ import annotations

from vpr.models.backbones.dinov2_keys import dinov2_to_ours
from vpr.models.pretrained.keymap import StateDict, rename_by_prefix
from vpr.models.pretrained.registry import PublishedModel, register_published_model

_RELEASES = "https://github.com/amaralibey/Bag-of-Queries/releases/download/v1.0"
_NUM_LAYERS = 2

# Upstream BoQ module names -> ours (vpr/models/aggregators/boq.py).
_BLOCK_PREFIXES = [
    ("encoder.", "feature_encoder."),
    ("queries", "queries"),
    ("self_attn.", "query_attention."),
    ("norm_q.", "query_norm."),
    ("cross_attn.", "cross_attention."),
    ("norm_out.", "output_norm."),
]
_AGGREGATOR_PREFIXES = [
    ("aggregator.proj_c.", "aggregator.input_projection."),
    ("aggregator.norm_input.", "aggregator.input_norm."),
    ("aggregator.fc.", "aggregator.row_projection."),
] + [
    (f"aggregator.boqs.{index}.{old}", f"aggregator.blocks.{index}.{new}")
    for index in range(_NUM_LAYERS)
    for old, new in _BLOCK_PREFIXES
]
# torchvision ResNet stages inside their nn.Sequential (2 = ReLU, 3 = max-pool: no weights).
_RESNET_PREFIXES = [
    ("backbone.net.0.", "backbone.conv1."),
    ("backbone.net.1.", "backbone.bn1."),
    ("backbone.net.4.", "backbone.layer1."),
    ("backbone.net.5.", "backbone.layer2."),
    ("backbone.net.6.", "backbone.layer3."),
]


def convert_boq_resnet(state_dict: StateDict) -> dict:
    """Maps the authors' ResNet-50 BoQ state dict onto our `VPRModel` keys, strictly."""
    return rename_by_prefix(state_dict, _RESNET_PREFIXES + _AGGREGATOR_PREFIXES,
                            layout="BoQ (ResNet-50)")


def convert_boq_dinov2(state_dict: StateDict) -> dict:
    """Maps the authors' DINOv2 BoQ state dict onto our `VPRModel` keys, strictly."""
    return rename_by_prefix(state_dict, [("backbone.dino.", "backbone.")] + _AGGREGATOR_PREFIXES,
                            layout="BoQ (DINOv2)", sections={"backbone.dino.": dinov2_to_ours})


register_published_model(PublishedModel(
    name="boq",
    variant="resnet50-16384",
    backbone="resnet50",
    agg_arch="BoQ",
    agg_options={"proj_channels": 512, "num_queries": 64, "num_layers": _NUM_LAYERS,
                 "row_dim": 32},
    descriptors_dim=16384,
    image_size=(384, 384),
    convert=convert_boq_resnet,
    weights=f"{_RELEASES}/resnet50_16384.pth",
    published={"MSLS-val R@1": (91.2, "amaralibey/Bag-of-Queries README"),
               "Pitts30k-test R@1": (92.4, "amaralibey/Bag-of-Queries README")},
))
register_published_model(PublishedModel(
    name="boq",
    variant="dinov2-12288",
    backbone="dinov2_vitb14",
    backbone_options={"final_norm": False},
    agg_arch="BoQ",
    agg_options={"proj_channels": 384, "num_queries": 64, "num_layers": _NUM_LAYERS,
                 "row_dim": 32},
    descriptors_dim=12288,
    image_size=(322, 322),
    convert=convert_boq_dinov2,
    weights=f"{_RELEASES}/dinov2_12288.pth",
    published={"MSLS-val R@1": (93.8, "amaralibey/Bag-of-Queries README"),
               "Pitts30k-test R@1": (93.7, "amaralibey/Bag-of-Queries README")},
))
