"""Re-ranking by geometric verification of local features (`--rerank K`).

Parts: local-feature methods by exact name (`registry`: backbone, sift, orb), matching
(`matching`), the verifier (`verify`), the order rule (`order`), the database feature cache
(`cache`), and `Reranker`, which puts them behind one call.
"""

from vpr.rerank.evaluation import rerank_retrieval
from vpr.rerank.features import LocalFeatureMethod, LocalFeatures
from vpr.rerank.order import rerank_order
from vpr.rerank.registry import build_method, list_methods, register_method
from vpr.rerank.reranker import Reranked, Reranker
from vpr.rerank.verify import GeometricVerifier

__all__ = [
    "GeometricVerifier",
    "LocalFeatureMethod",
    "LocalFeatures",
    "Reranked",
    "Reranker",
    "build_method",
    "list_methods",
    "register_method",
    "rerank_order",
    "rerank_retrieval",
]
