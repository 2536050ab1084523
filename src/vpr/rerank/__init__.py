"""Re-ranking by geometric verification of local features (`--rerank K`).

Parts: local-feature methods by exact name (`registry`: backbone, sift, orb), matching
(`matching`), the verifier (`verify`), the order rule (`order`), the database feature cache
(`cache`), and `Reranker`, which puts them behind one call.
"""

from importlib import import_module
from typing import Any

# Where each public name lives; imported on first use, since OpenCV and torch are slow to
# load and the command line only needs `vpr.rerank.options` to build its parser.
_LOCATIONS = {
    "GeometricVerifier": "vpr.rerank.verify",
    "LocalFeatureMethod": "vpr.rerank.features",
    "LocalFeatures": "vpr.rerank.features",
    "Reranked": "vpr.rerank.reranker",
    "Reranker": "vpr.rerank.reranker",
    "Verification": "vpr.rerank.verify",
    "build_method": "vpr.rerank.registry",
    "list_methods": "vpr.rerank.registry",
    "register_method": "vpr.rerank.registry",
    "rerank_order": "vpr.rerank.order",
    "rerank_retrieval": "vpr.rerank.evaluation",
}


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'vpr.rerank' has no attribute {name!r}")
    return getattr(import_module(_LOCATIONS[name]), name)


__all__ = [
    "GeometricVerifier",
    "LocalFeatureMethod",
    "LocalFeatures",
    "Reranked",
    "Reranker",
    "Verification",
    "build_method",
    "list_methods",
    "register_method",
    "rerank_order",
    "rerank_retrieval",
]
