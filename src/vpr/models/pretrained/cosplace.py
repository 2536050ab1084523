"""CosPlace (Berton et al., CVPR 2022): ResNet -> L2 -> GeM -> Linear -> L2, trained on SF-XL.

The authors' `GeoLocalizationNet` keeps a torchvision ResNet without avgpool and fc as an
`nn.Sequential` (keys `backbone.0.` conv1 ... `backbone.7.` layer4) and aggregates with
`nn.Sequential(L2Norm, GeM, Flatten, Linear, L2Norm)` (keys `aggregation.1.p` and
`aggregation.3.weight/bias`). GeM there is (mean over h*w of clamp(x, 1e-6)^p)^(1/p) with a
learnable p initialised to 3, and every L2 norm is over channels: exactly our `CosPlace`
aggregator (`aggregator.pool.p`, `aggregator.projection`).
"""

from __future__ import annotations

import torch

from vpr.models.pretrained.keymap import StateDict, rename_by_prefix
from vpr.models.pretrained.registry import PublishedModel, register_published_model

# `nn.Sequential(*list(resnet.children())[:-2])` numbers a torchvision ResNet's children:
# conv1, bn1, relu, maxpool, layer1..layer4 (relu and maxpool hold no weights).
_SEQUENTIAL_RESNET = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3",
                      "7": "layer4"}

# Published descriptor sizes per backbone (the authors' hubconf.py); VGG16 is not built here.
COSPLACE_DIMS: dict[str, tuple[int, ...]] = {
    "resnet18": (32, 64, 128, 256, 512),
    "resnet50": (32, 64, 128, 256, 512, 1024, 2048),
    "resnet101": (32, 64, 128, 256, 512, 1024, 2048),
    "resnet152": (32, 64, 128, 256, 512, 1024, 2048),
}
_TORCHVISION_SPELLING = {"resnet18": "ResNet18", "resnet50": "ResNet50",
                         "resnet101": "ResNet101", "resnet152": "ResNet152"}


def convert_geolocalization_net(state_dict: StateDict) -> dict[str, torch.Tensor]:
    """Maps a `GeoLocalizationNet` state dict (CosPlace, EigenPlaces) onto our keys, strictly."""
    prefixes = [(f"backbone.{index}.", f"backbone.{name}.")
                for index, name in _SEQUENTIAL_RESNET.items()]
    prefixes += [("aggregation.1.", "aggregator.pool."),
                 ("aggregation.3.", "aggregator.projection.")]
    return rename_by_prefix(state_dict, prefixes, layout="CosPlace/EigenPlaces GeoLocalizationNet")


def geolocalization_net_models(name: str, dims: dict[str, tuple[int, ...]], url: str,
                               published: dict[tuple[str, int], dict[str, tuple[float, str]]]
                               ) -> list[PublishedModel]:
    """One `PublishedModel` per backbone and descriptor size of a GeoLocalizationNet family.

    The first variant registered is the family's default: ResNet-50, 2048-D (the largest).
    """
    models = []
    variants = [("resnet50", 2048)] + [(backbone, dim) for backbone, sizes in dims.items()
                                       for dim in sizes if (backbone, dim) != ("resnet50", 2048)]
    for backbone, dim in variants:
        models.append(PublishedModel(
            name=name, variant=f"{backbone}-{dim}", backbone=backbone, agg_arch="CosPlace",
            descriptors_dim=dim, image_size=None, convert=convert_geolocalization_net,
            weights=url.format(backbone=_TORCHVISION_SPELLING[backbone], dim=dim),
            published=published.get((backbone, dim), {}),
        ))
    return models


for _model in geolocalization_net_models(
        "cosplace", COSPLACE_DIMS,
        "https://github.com/gmberton/CosPlace/releases/download/v1.0/{backbone}_{dim}_cosplace.pth",
        published={}):
    register_published_model(_model)
