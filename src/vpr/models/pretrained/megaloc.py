"""MegaLoc (gmberton/MegaLoc): DINOv2-B + SALAD (256-D clusters) + Linear to 8448-D.

Upstream keys: `backbone.model.*` (facebookresearch/dinov2 ViT-B/14, final norm applied),
`aggregator.agg.{token_features, cluster_features, score, dust_bin}` (SALAD with
cluster_dim=256, hidden 512: 64 x 256 + 256 = 16640 values) and `aggregator.linear.*`
(16640 -> 8448), then L2. Published as `megaloc.torch` (torch hub) and as safetensors on
the Hugging Face hub (same keys).
"""

from __future__ import annotations

from vpr.models.backbones.dinov2_keys import dinov2_to_ours
from vpr.models.pretrained.keymap import StateDict, rename_by_prefix
from vpr.models.pretrained.registry import PublishedModel, register_published_model
from vpr.models.pretrained.salad import SALAD_AGGREGATOR_PREFIXES


def convert_megaloc(state_dict: StateDict) -> dict:
    """Maps the authors' MegaLoc state dict onto our `VPRModel` keys, strictly."""
    prefixes = [("backbone.model.", "backbone."), ("aggregator.linear.", "aggregator.projection.")]
    prefixes += [(f"aggregator.agg.{old}", f"aggregator.{new}")
                 for old, new in SALAD_AGGREGATOR_PREFIXES]
    return rename_by_prefix(state_dict, prefixes, layout="MegaLoc",
                            sections={"backbone.model.": dinov2_to_ours})


register_published_model(PublishedModel(
    name="megaloc",
    variant="",
    backbone="dinov2_vitb14",
    agg_arch="SALAD",
    agg_options={"num_clusters": 64, "cluster_dim": 256, "token_dim": 256, "hidden_dim": 512},
    descriptors_dim=8448,
    # MegaLoc takes any size (it rounds sides to multiples of 14); 322 px as SALAD.
    image_size=(322, 322),
    convert=convert_megaloc,
    weights="https://github.com/gmberton/MegaLoc/releases/download/v1.0/megaloc.torch",
))
