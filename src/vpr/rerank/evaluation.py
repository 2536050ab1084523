"""Re-ranking inside an evaluation (`vpr test`): reorder, then keep the figures before it."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vpr.rerank.reranker import Reranked, Reranker

logger = logging.getLogger("vpr")


class EvaluationReranker:
    """Re-ranks a test set's retrieval; database features cached under ``cache_root``.

    Args:
        reranker: the re-ranking to apply.
        cache_root: one sub-folder per test set holds its database's local features
            (None: computed every time).
    """

    def __init__(self, reranker: Reranker, cache_root: str | Path | None) -> None:
        self.reranker = reranker
        self.cache_root = Path(cache_root) if cache_root is not None else None

    @property
    def candidates_needed(self) -> int:
        """How many candidates per query the search must return."""
        return self.reranker.top_k

    def __call__(self, dataset: Any, predictions: np.ndarray, distances: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Re-ranks ``predictions`` (squared L2 ``distances`` of normalised descriptors).

        Returns:
            ``(predictions, distances, info)`` in the new order; ``info`` holds the settings,
            the inliers' loop-closure metrics, and the timings.
        """
        from vpr.eval.loop_closure import loop_closure_metrics

        folder = None
        if self.cache_root is not None:
            root = Path(dataset.root).resolve()
            folder = self.cache_root / f"{root.parent.name}_{root.name}"
        start = time.perf_counter()
        database = self.reranker.database_features(dataset.database_paths, folder)
        database_seconds = time.perf_counter() - start
        similarities = 1.0 - np.asarray(distances, np.float64) / 2.0
        result = self.reranker.rerank(dataset.query_paths, predictions, similarities, database)
        queries = max(1, len(predictions))
        logger.info("Re-ranked the top %d of %d queries with %s in %.1f ms per query",
                    self.reranker.top_k, len(predictions), self.reranker.method.name,
                    1000 * result.seconds / queries)
        rows = np.arange(len(predictions))[:, None]
        new_distances = np.asarray(distances)[rows, result.order]
        positives = [set(np.asarray(p).tolist()) for p in dataset.positives_per_query]
        correct = [bool(len(row)) and int(row[0]) in positives[q]
                   for q, row in enumerate(result.candidates)]
        top_inliers = (result.inliers[:, 0] if result.inliers.size
                       else np.zeros(len(predictions)))
        info = {
            "settings": self.reranker.describe(),
            "ms_per_query": 1000 * result.seconds / queries,
            "database_features_seconds": database_seconds,
            "loop_closure_inliers": loop_closure_metrics(
                top_inliers, correct, [len(p) > 0 for p in positives], score_name="inliers"),
        }
        return result.candidates, new_distances, info


def rerank_retrieval(query_paths: Sequence[str | Path], database_paths: Sequence[str | Path],
                     candidates: np.ndarray, similarities: np.ndarray,
                     settings: dict[str, Any], model: Any = None,
                     cache_folder: str | Path | None = None) -> Reranked:
    """Re-ranks a retrieval in one call (for `vpr benchmark` and other protocols).

    Args:
        query_paths, database_paths: the images.
        candidates: (Q, k) database indices by global similarity, best first.
        similarities: (Q, k) their cosine similarities.
        settings: as `vpr.rerank.options.rerank_settings` makes them, e.g.
            ``{"top_k": 10, "method": "backbone"}`` (the rest defaults).
        model: the VPR model (for the ``backbone`` method).
        cache_folder: where to keep the database's local features (None: not kept).
    """
    from vpr.rerank.options import build_reranker

    reranker = build_reranker(settings, model)
    database = reranker.database_features(database_paths, cache_folder)
    return reranker.rerank(query_paths, candidates, similarities, database)
