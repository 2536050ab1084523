"""Published VPR models (CosPlace, EigenPlaces, MixVPR, SALAD, BoQ, MegaLoc, DINOv2...).

Each upstream weight layout has a module here that maps the authors' state-dict keys onto
ours, explicitly and strictly, and registers its named models in `registry`;
`load.load_published(model_spec, weights)` builds one and loads its weights.
"""

from vpr.models.pretrained import cosplace, eigenplaces, mixvpr  # noqa: F401 - registers
from vpr.models.pretrained.registry import (
    PUBLISHED_MODELS,
    PublishedModel,
    get_published_model,
    list_published_models,
    register_published_model,
)

__all__ = [
    "PUBLISHED_MODELS",
    "PublishedModel",
    "get_published_model",
    "list_published_models",
    "register_published_model",
]
