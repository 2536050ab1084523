"""Re-ranking retrieved candidates by geometric verification of local features.

`Reranker` puts one local-feature method, one verifier and one ordering rule behind a
single call: given each query's top candidates (by global descriptor), it matches the query
with its first ``top_k`` candidates, counts verified inliers and reorders those ``top_k``
(the rest keep their global order behind them).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vpr.rerank.cache import cached_features
from vpr.rerank.features import LocalFeatureMethod, LocalFeatures
from vpr.rerank.order import rerank_order
from vpr.rerank.verify import GeometricVerifier, Verification


@contextlib.contextmanager
def single_threaded():
    """One BLAS and one OpenCV thread while matching pairs of small descriptor sets.

    The products and fits of one pair take well under a millisecond of work; waking a
    thread pool for each costs more than that, and far more on a busy machine (measured
    5-20x slower matching with 2 threads on 2 shared cores).
    """
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # optional: without it, BLAS keeps its threads
            yield
            return
        with threadpool_limits(1):
            yield
    finally:
        cv2.setNumThreads(previous)


@dataclass
class Reranked:
    """Candidates after re-ranking.

    Attributes:
        candidates: (Q, k) database indices in the new order.
        similarities: (Q, k) their global similarities, moved with them.
        inliers: (Q, k) verified inliers of each candidate; -1 where not verified
            (beyond ``top_k``, or a missing candidate).
        order: (Q, k) the permutation applied: ``candidates[q] = before[q][order[q]]``.
        seconds: time spent on the queries (their local features, matching, verifying).
        pairs: with ``rerank(..., pairs=n)``, Q rows of k entries, moved with the
            candidates: each verified candidate's inlier correspondences, at most n
            ``(x_query, y_query, x_candidate, y_candidate)`` rows in each original image's
            pixels, the best-fitting first (`vpr.rerank.verify.Verification`); None where
            not verified. None without ``pairs``.
    """

    candidates: np.ndarray
    similarities: np.ndarray
    inliers: np.ndarray
    order: np.ndarray
    seconds: float = 0.0
    pairs: list[list[np.ndarray | None]] | None = None


class Reranker:
    """Geometric re-ranking of the ``top_k`` first candidates of each query.

    Args:
        method: the local-feature method (extraction + matching).
        verifier: counts inliers of the matches.
        top_k: how many candidates per query are verified and reordered.
        rule, inlier_scale: how inliers and similarity make the order
            (`vpr.rerank.order.rerank_order`).
    """

    def __init__(self, method: LocalFeatureMethod, verifier: GeometricVerifier | None = None,
                 top_k: int = 10, rule: str = "blend", inlier_scale: float = 50.0) -> None:
        if top_k < 1:
            raise ValueError(f"re-ranking top_k must be >= 1 candidates, got {top_k}")
        self.method = method
        self.verifier = verifier or GeometricVerifier()
        self.top_k = top_k
        self.rule = rule
        self.inlier_scale = inlier_scale
        rerank_order(np.zeros(1), np.zeros(1), rule, inlier_scale)  # checks rule and scale now

    def describe(self) -> dict[str, Any]:
        """The settings, as plain data (recorded with results)."""
        return {"top_k": self.top_k, "method": self.method.identity(),
                "geometry": self.verifier.geometry, "estimator": self.verifier.estimator,
                "threshold_px": self.verifier.threshold_px, "rule": self.rule,
                **({"inlier_scale": self.inlier_scale} if self.rule == "blend" else {})}

    def database_features(self, paths: Sequence[str | Path],
                          cache_folder: str | Path | None) -> list[LocalFeatures]:
        """The database images' local features, through the cache when a folder is given."""
        if cache_folder is None:
            return self.method.extract(list(paths))
        return cached_features(cache_folder, self.method, paths)

    def inliers(self, query: LocalFeatures, candidate: LocalFeatures) -> int:
        """Verified inliers between two images' features."""
        return self.verify(query, candidate, pairs=False).inliers

    def verify(self, query: LocalFeatures, candidate: LocalFeatures,
               pairs: bool = True) -> Verification:
        """Verified inliers between two images' features (and their correspondences)."""
        return self.verifier.verify(query, candidate, self.method.match(query, candidate),
                                    pairs=pairs)

    def _verify_all(self, queries: list[LocalFeatures], candidates: np.ndarray,
                    database: Sequence[LocalFeatures], verified: int, pairs: int
                    ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """(Q, k) inliers of the first ``verified`` candidates of each query, -1 elsewhere,
        and their first ``pairs`` inlier correspondences (None elsewhere)."""
        inliers = np.full(candidates.shape, -1, np.int64)
        kept: list[list[np.ndarray | None]] = [[None] * candidates.shape[1] for _ in queries]
        for row, query in enumerate(queries):
            for column in range(verified):
                item = int(candidates[row, column])
                if item >= 0:
                    verification = self.verify(query, database[item], pairs=pairs > 0)
                    inliers[row, column] = verification.inliers
                    if pairs:
                        kept[row][column] = verification.pairs[:pairs]
        return inliers, kept

    def rerank(self, query_paths: Sequence[str | Path], candidates: np.ndarray,
               similarities: np.ndarray,
               database: Sequence[LocalFeatures], pairs: int = 0) -> Reranked:
        """Re-ranks each query's candidates.

        Args:
            query_paths: the Q query images.
            candidates: (Q, k) database indices, best first (-1: missing).
            similarities: (Q, k) their global similarities (higher is more similar).
            database: local features of every database image, by index.
            pairs: keep up to this many inlier correspondences of each verified candidate
                (``Reranked.pairs``; 0: none, as an evaluation needs only the counts).
        """
        start = time.perf_counter()
        candidates = np.asarray(candidates)
        similarities = np.asarray(similarities)
        queries = self.method.extract(list(query_paths))
        order = np.tile(np.arange(candidates.shape[1]), (len(candidates), 1))
        verified = min(self.top_k, candidates.shape[1])
        with single_threaded():
            inliers, kept = self._verify_all(queries, candidates, database, verified, pairs)
        for row in range(len(queries)):
            present = np.flatnonzero(candidates[row, :verified] >= 0)
            order[row, present] = present[rerank_order(similarities[row, present],
                                                       inliers[row, present],
                                                       self.rule, self.inlier_scale)]
        rows = np.arange(len(candidates))[:, None]
        moved = [[kept[row][column] for column in order[row]] for row in range(len(kept))]
        return Reranked(candidates[rows, order], similarities[rows, order], inliers[rows, order],
                        order, time.perf_counter() - start, moved if pairs else None)
