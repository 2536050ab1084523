"""DINOv2 SALAD (serizba/salad): `dino_salad.ckpt`, DINOv2-B fine-tuned + SALAD, 8448-D.

Upstream keys: `backbone.model.*` (a facebookresearch/dinov2 ViT-B/14, final norm applied,
class token read after it) and `aggregator.{token_features.0,2, cluster_features.0,3,
score.0,3, dust_bin}`. The file is the bare state dict (their hubconf loads it directly); a
Lightning checkpoint with a "state_dict" entry is unwrapped by `unwrap_state_dict` first.
"""

from __future__ import annotations

from vpr.models.backbones.dinov2_keys import dinov2_to_ours
from vpr.models.pretrained.keymap import StateDict, rename_by_prefix
from vpr.models.pretrained.registry import PublishedModel, register_published_model

# Upstream SALAD module names -> ours (vpr/models/aggregators/salad.py).
SALAD_AGGREGATOR_PREFIXES: list[tuple[str, str]] = [
    ("token_features.", "token_mlp."),
    ("cluster_features.", "cluster_mlp."),
    ("score.", "score_mlp."),
    ("dust_bin", "dustbin"),
]


def convert_salad(state_dict: StateDict) -> dict:
    """Maps the authors' SALAD state dict onto our `VPRModel` keys, strictly."""
    prefixes = [("backbone.model.", "backbone.")] + [
        (f"aggregator.{old}", f"aggregator.{new}") for old, new in SALAD_AGGREGATOR_PREFIXES
    ]
    return rename_by_prefix(state_dict, prefixes, layout="SALAD",
                            sections={"backbone.model.": dinov2_to_ours})


register_published_model(PublishedModel(
    name="salad",
    variant="dinov2-8448",
    backbone="dinov2_vitb14",
    agg_arch="SALAD",
    agg_options={"num_clusters": 64, "cluster_dim": 128, "token_dim": 256},
    descriptors_dim=8448,
    image_size=(322, 322),
    convert=convert_salad,
    weights="https://github.com/serizba/salad/releases/download/v1.0.0/dino_salad.ckpt",
    published={
        "MSLS-val R@1": (92.2, "serizba/salad README"),
        "MSLS-challenge R@1": (75.0, "serizba/salad README"),
        "Nordland R@1": (76.0, "serizba/salad README"),
    },
))
