"""Published VPR models (CosPlace, EigenPlaces, MixVPR, SALAD, BoQ, MegaLoc, DINOv2...).

Each upstream weight layout has a module here that maps the authors' state-dict keys onto
ours, explicitly and strictly, and registers its named models in `registry`;
`load.load_published(model_spec, weights)` builds one and loads its weights from a file or
the Hugging Face hub cache.
"""

# Each layout module registers its named models on import.
from vpr.models.pretrained import (  # noqa: E402, F401, I001
    boq, cosplace, dinov2, eigenplaces, megaloc, mixvpr, salad)
from vpr.models.pretrained.build import (  # noqa: E402
    build_published_architecture,
    build_published_model,
)
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
    "build_published_architecture",
    "build_published_model",
    "get_published_model",
    "list_published_models",
    "register_published_model",
]
