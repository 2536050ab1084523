"""EigenPlaces (Berton et al., ICCV 2023): CosPlace's network, trained for viewpoint robustness.

The authors' `GeoLocalizationNet_` is CosPlace's `GeoLocalizationNet` under another name:
the same `backbone.N` / `aggregation.N` keys and the same L2 -> GeM -> Linear -> L2 head, so
the CosPlace conversion applies unchanged; only the published sizes and files differ.
"""

from __future__ import annotations

from vpr.models.pretrained.cosplace import geolocalization_net_models
from vpr.models.pretrained.registry import register_published_model

# Published descriptor sizes per backbone (the authors' hubconf.py); VGG16 is not built here.
EIGENPLACES_DIMS: dict[str, tuple[int, ...]] = {
    "resnet18": (256, 512),
    "resnet50": (128, 256, 512, 1024, 2048),
    "resnet101": (128, 256, 512, 1024, 2048),
}

for _model in geolocalization_net_models(
        "eigenplaces", EIGENPLACES_DIMS,
        "https://github.com/gmberton/EigenPlaces/releases/download/v1.0/"
        "{backbone}_{dim}_eigenplaces.pth",
        published={}):
    register_published_model(_model)
