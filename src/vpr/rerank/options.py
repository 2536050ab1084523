"""The ``--rerank*`` options of `vpr test`, `vpr locate` and `vpr serve`, read in one place."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vpr.config.fields import LazyNames
from vpr.rerank.names import ESTIMATOR_NAMES, GEOMETRIES, RULES


def add_rerank_options(parser: argparse.ArgumentParser) -> None:
    """Adds ``--rerank K`` and the settings of the re-ranking to ``parser``."""
    from vpr.rerank.registry import list_methods

    group = parser.add_argument_group(
        "re-ranking", "verify the top K candidates geometrically with local features and "
                      "reorder them by verified inliers")
    group.add_argument("--rerank", type=int, default=0, metavar="K",
                       help="re-rank the top K candidates of each query (default: 0 = off)")
    group.add_argument("--rerank_method", default="backbone", choices=LazyNames(list_methods),
                       help="local features: backbone = the model's own feature map cells "
                            "(no other weights), sift, orb (default: backbone)")
    group.add_argument("--rerank_geometry", default="homography", choices=GEOMETRIES,
                       help="the verified model: homography or fundamental (default: "
                            "homography)")
    group.add_argument("--rerank_estimator", default="magsac", choices=ESTIMATOR_NAMES,
                       help="robust estimator: magsac (USAC-MAGSAC++), usac, ransac "
                            "(default: magsac)")
    group.add_argument("--rerank_threshold", type=float, default=3.0, metavar="PX",
                       help="inlier tolerance in pixels, at least a dense grid's cell "
                            "(default: 3)")
    group.add_argument("--rerank_rule", default="blend", choices=RULES,
                       help="final order: blend = by similarity + inliers / 50, or inliers = "
                            "most inliers first, ties by similarity (default: blend, the better "
                            "on the synthetic sets, docs/BENCHMARKS.md)")
    group.add_argument("--rerank_options", nargs="+", default=[], metavar="KEY=VALUE",
                       help="method options, e.g. layer=layer3 (backbone), max_keypoints=500 "
                            "(sift, orb); values are JSON or plain strings")


def rerank_settings(args: argparse.Namespace) -> dict[str, Any] | None:
    """The re-ranking settings of parsed arguments as plain data, None when off."""
    top_k = getattr(args, "rerank", 0) or 0
    if top_k <= 0:
        return None
    return {
        "top_k": top_k, "method": args.rerank_method, "geometry": args.rerank_geometry,
        "estimator": args.rerank_estimator, "threshold_px": args.rerank_threshold,
        "rule": args.rerank_rule, "options": parse_method_options(args.rerank_options),
    }


def parse_method_options(items: list[str]) -> dict[str, Any]:
    """``["layer=layer3", "ratio=0.7"]`` -> ``{"layer": "layer3", "ratio": 0.7}``."""
    options: dict[str, Any] = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ValueError(f"--rerank_options expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def build_reranker(settings: dict[str, Any], model: Any = None) -> Any:
    """A `Reranker` from `rerank_settings` (``model``: the VPR model, for backbone features)."""
    from vpr.rerank.registry import build_method
    from vpr.rerank.reranker import Reranker
    from vpr.rerank.verify import GeometricVerifier

    try:
        method = build_method(settings["method"], model=model, **settings.get("options", {}))
    except TypeError as error:  # an option the method does not take
        raise ValueError(f"--rerank_options: {error}") from None
    verifier = GeometricVerifier(geometry=settings.get("geometry", "homography"),
                                 estimator=settings.get("estimator", "magsac"),
                                 threshold_px=settings.get("threshold_px", 3.0))
    return Reranker(method, verifier, top_k=settings["top_k"],
                    rule=settings.get("rule", "blend"))


def evaluation_reranker(args: argparse.Namespace, model: Any, cache_root: Any) -> Any:
    """The re-ranking hook of `vpr test` (None without ``--rerank``); caches under
    ``cache_root``."""
    settings = rerank_settings(args)
    if settings is None:
        return None
    from vpr.rerank.evaluation import EvaluationReranker

    return EvaluationReranker(build_reranker(settings, model), cache_root)
