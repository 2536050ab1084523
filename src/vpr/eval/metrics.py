"""Recall@N of retrieval predictions (overall, per group, per threshold) and localization error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vpr.data.datasets import positives_within

# Shares of queries reported by `localization_error_stats`: within 25 m, 100 m and 1 km.
LOCALIZATION_RADII = (25.0, 100.0, 1000.0)


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


def recall_per_group(
    predictions: np.ndarray,
    positives_per_query: Sequence[np.ndarray],
    groups: Sequence[str],
    n_values: Sequence[int] = (1, 5, 10, 20),
) -> dict[str, dict[int, float]]:
    """Recall@N of each group of queries.

    Args:
        predictions: (Q, k) database indices, best first.
        positives_per_query: the correct database indices of each query.
        groups: the group name of each query (see `vpr.eval.grouping.query_groups`).
        n_values: the N values.

    Returns:
        ``{group: {N: recall in percent}}``, groups sorted by name.
    """
    predictions = np.asarray(predictions)
    if len(groups) != predictions.shape[0]:
        raise ValueError(f"{len(groups)} group names for {predictions.shape[0]} queries")
    names = np.asarray(list(groups), dtype=object)
    recalls: dict[str, dict[int, float]] = {}
    for group in sorted(set(groups)):
        members = np.flatnonzero(names == group)
        recalls[group] = recall_at_n(
            predictions[members], [positives_per_query[i] for i in members], n_values
        )
    return recalls


def recall_per_threshold(
    predictions: np.ndarray,
    query_utm: np.ndarray,
    database_utm: np.ndarray,
    thresholds: Sequence[float] = (10.0, 25.0, 50.0, 100.0),
    n_values: Sequence[int] = (1, 5, 10, 20),
) -> dict[float, dict[int, float]]:
    """Recall@N when a prediction is correct within each of several distances.

    Positives are recomputed for every threshold from the UTM coordinates.

    Args:
        predictions: (Q, k) database indices, best first.
        query_utm: (Q, 2) query UTM east/north in metres.
        database_utm: (N, 2) database UTM east/north in metres.
        thresholds: the distances in metres.
        n_values: the N values.

    Returns:
        ``{threshold: {N: recall in percent}}`` in the order of ``thresholds``.
    """
    query_utm = np.asarray(query_utm, dtype=np.float64).reshape(-1, 2)
    database_utm = np.asarray(database_utm, dtype=np.float64).reshape(-1, 2)
    return {
        float(threshold): recall_at_n(
            predictions, positives_within(query_utm, database_utm, float(threshold)), n_values
        )
        for threshold in thresholds
    }


def localization_errors(
    predictions: np.ndarray, query_utm: np.ndarray, database_utm: np.ndarray
) -> np.ndarray:
    """Distance in metres between each query and its top-1 prediction (inf when none).

    Args:
        predictions: (Q, k) database indices, best first.
        query_utm: (Q, 2) query UTM east/north in metres.
        database_utm: (N, 2) database UTM east/north in metres.

    Returns:
        (Q,) float64 errors in metres.
    """
    predictions = np.asarray(predictions)
    query_utm = np.asarray(query_utm, dtype=np.float64).reshape(-1, 2)
    database_utm = np.asarray(database_utm, dtype=np.float64).reshape(-1, 2)
    if predictions.ndim != 2 or predictions.shape[0] != len(query_utm):
        raise ValueError(
            f"predictions {predictions.shape} do not match {len(query_utm)} query coordinates"
        )
    if predictions.shape[1] == 0:
        # No prediction at all: the query is not located, so its error is unbounded.
        return np.full(len(query_utm), np.inf)
    top1 = database_utm[predictions[:, 0]]
    return np.linalg.norm(top1 - query_utm, axis=1)


def localization_error_stats(
    errors: np.ndarray, radii: Sequence[float] = LOCALIZATION_RADII
) -> dict[str, float | int | None]:
    """Median and mean error, and the percentage of queries within each radius.

    Args:
        errors: (Q,) errors in metres, e.g. from `localization_errors`; inf = not located.
        radii: the radii in metres for the ``within_{r}m`` shares.

    Returns:
        ``{"queries_num", "median_m", "mean_m", "within_25m", ...}``; the median and mean
        are None when there is no query, or (mean) when some query is not located.
    """
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    queries_num = len(errors)
    stats: dict[str, float | int | None] = {"queries_num": queries_num}
    if queries_num == 0:
        stats.update(median_m=None, mean_m=None)
        stats.update({f"within_{radius:g}m": 0.0 for radius in radii})
        return stats
    finite = bool(np.isfinite(errors).all())
    # The median stays meaningful with a few unlocated (inf) queries; the mean does not.
    median = float(np.median(errors))
    stats["median_m"] = median if np.isfinite(median) else None
    stats["mean_m"] = float(errors.mean()) if finite else None
    for radius in radii:
        stats[f"within_{radius:g}m"] = float(np.count_nonzero(errors <= radius) / queries_num
                                             * 100)
    return stats


def format_recalls(recalls: dict[int, float]) -> str:
    """Formats recalls as "R@1: 45.0, R@5: 70.0"."""
    return ", ".join(f"R@{n}: {value:.1f}" for n, value in recalls.items())
