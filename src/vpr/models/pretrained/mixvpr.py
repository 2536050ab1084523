"""MixVPR (Ali-bey et al., WACV 2023): ResNet-50 cut after layer3, 4 feature mixers, 4096-D.

The authors' Lightning `VPRModel` holds `backbone.model` (a torchvision ResNet-50 whose
layer4, avgpool and fc are set to None, so its keys are `backbone.model.conv1.` ...
`backbone.model.layer3.`) and `aggregator` (`mix.i.mix.{0,1,3}` = LayerNorm, Linear, -,
Linear of each mixer; `channel_proj` with bias; `row_proj` without bias). Their forward
pass: flatten the 1024x20x20 map to (B, 1024, 400), x + MLP(LayerNorm(x)) four times over
the 400 positions, project channels 1024 -> 1024, project rows 400 -> 4, flatten
channel-major and L2-normalise: our `MixVPR` aggregator with `row_bias=False`. Images are
320x320 (the mixers are tied to the 20x20 map), ImageNet mean/std.
"""

from __future__ import annotations

import torch

from vpr.models.pretrained.keymap import StateDict, rename_by_prefix
from vpr.models.pretrained.registry import PublishedModel, register_published_model

MIXVPR_MIX_DEPTH = 4


def convert_mixvpr(state_dict: StateDict) -> dict[str, torch.Tensor]:
    """Maps the authors' `VPRModel` state dict (ResNet + MixVPR) onto our keys, strictly."""
    prefixes = [("backbone.model.", "backbone."),
                ("aggregator.channel_proj.", "aggregator.channel_projection."),
                ("aggregator.row_proj.", "aggregator.row_projection.")]
    prefixes += [(f"aggregator.mix.{index}.mix.", f"aggregator.mixers.{index}.mlp.")
                 for index in range(MIXVPR_MIX_DEPTH)]
    return rename_by_prefix(state_dict, prefixes, layout="MixVPR")


register_published_model(PublishedModel(
    name="mixvpr", variant="resnet50-4096", backbone="resnet50", agg_arch="MixVPR",
    descriptors_dim=4096, image_size=(320, 320), convert=convert_mixvpr,
    agg_options={"mix_depth": MIXVPR_MIX_DEPTH, "mlp_ratio": 1, "out_channels": 1024,
                 "out_rows": 4, "row_bias": False},
    backbone_options={"cut_after": "layer3"},
    # The authors publish the file on Google Drive (README); no hub mirror is registered.
    weights="resnet50_MixVPR_4096_channels(1024)_rows(4).ckpt (Google Drive link in the "
            "amaralibey/MixVPR README)",
    published={"Pitts30k R@1": (91.6, "amaralibey/MixVPR README"),
               "MSLS-val R@1": (88.2, "amaralibey/MixVPR README")},
))
