"""Recall@N of retrieval predictions, on numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_at_n(
    predictions: np.ndarray,
    positives_per_query: Sequence[np.ndarray],
    n_values: Sequence[int] = (1, 5, 10, 20),
) -> dict[int, float]:
    """Computes Recall@N: the percentage of queries with a positive among their top N predictions.

    Args:
        predictions: (Q, k) database indices, best first, for each query.
        positives_per_query: for each query, the database indices that are correct answers.
        n_values: the N values; an N above k uses all k predictions.

    Returns:
        ``{N: recall in percent}`` in the order of ``n_values``.
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 2:
        raise ValueError(f"predictions must be (Q, k), got shape {predictions.shape}")
    if len(positives_per_query) != predictions.shape[0]:
        raise ValueError(
            f"{predictions.shape[0]} queries of predictions but "
            f"{len(positives_per_query)} lists of positives"
        )
    if any(n < 1 for n in n_values):
        raise ValueError(f"N values must be >= 1, got {list(n_values)}")
    queries_num = predictions.shape[0]
    if queries_num == 0 or predictions.shape[1] == 0:
        # No query, or no prediction to be right about: every recall is 0.
        return {int(n): 0.0 for n in n_values}
    is_positive = np.stack(
        [
            np.isin(row, np.asarray(positives))
            for row, positives in zip(predictions, positives_per_query, strict=True)
        ]
    )
    # Rank (0-based) of each query's first correct prediction. Queries with none (no positive
    # at all, or none retrieved) get a rank no N reaches, so they are misses at every N, also
    # for an N above k, where the test "rank < N" then looks at all k predictions.
    never = np.iinfo(np.int64).max
    first_hit = np.where(is_positive.any(axis=1), is_positive.argmax(axis=1), never)
    # Divide by the number of queries and multiply by 100, so the recalls are percentages.
    return {int(n): float(np.count_nonzero(first_hit < n) / queries_num * 100) for n in n_values}


def format_recalls(recalls: dict[int, float]) -> str:
    """Formats recalls as "R@1: 45.0, R@5: 70.0"."""
    return ", ".join(f"R@{n}: {value:.1f}" for n, value in recalls.items())
