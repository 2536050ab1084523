"""Loop-closure metrics: can one similarity threshold accept the right top-1 matches only?

A robot closing loops keeps a query's top-1 match when its score reaches a threshold. Sweeping
the threshold over the scores gives a precision-recall curve:

    accepted(t)  = queries whose top-1 score >= t
    precision(t) = correct accepted / accepted
    recall(t)    = correct accepted / queries that have a true match in the database

(a query without any true match can only produce a false loop closure). Equal scores enter
together: one threshold accepts all of them or none, so the curve has one point per distinct
score. Average precision is the step-wise area ``sum (R_i - R_{i-1}) P_i`` over those points
(no interpolation), as scikit-learn's ``average_precision_score``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def precision_recall_curve(
    scores: Sequence[float], correct: Sequence[bool], has_match: Sequence[bool] | None = None,
) -> dict[str, list[float]]:
    """Precision and recall of accepting top-1 matches at each distinct score.

    Args:
        scores: (Q,) the top-1 match's score of each query; higher means more similar.
        correct: (Q,) whether the top-1 match is a true match.
        has_match: (Q,) whether the query has any true match in the database (the recall's
            denominator); None: every query has one.

    Returns:
        ``{"thresholds", "precision", "recall"}``: lists, thresholds decreasing; point i
        accepts every query with score >= thresholds[i].
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    has_match = (np.ones(len(scores), bool) if has_match is None
                 else np.asarray(has_match, dtype=bool).reshape(-1))
    if not len(scores) == len(correct) == len(has_match):
        raise ValueError(f"{len(scores)} scores, {len(correct)} correct flags and "
                         f"{len(has_match)} has_match flags: they must be equal")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    if (correct & ~has_match).any():
        raise ValueError("a query without a true match cannot have a correct top-1")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    true_positives = np.cumsum(correct[order])
    # The last query of each run of equal scores: the cumulative counts there include the
    # whole run, so tied queries are accepted together.
    last_of_run = np.r_[sorted_scores[1:] != sorted_scores[:-1], True] if len(scores) else \
        np.zeros(0, bool)
    accepted = np.arange(1, len(scores) + 1)[last_of_run]
    true_positives = true_positives[last_of_run]
    matchable = int(has_match.sum())
    precision = true_positives / accepted
    recall = true_positives / matchable if matchable else np.zeros_like(precision)
    return {"thresholds": sorted_scores[last_of_run].tolist(),
            "precision": precision.tolist(), "recall": recall.tolist()}


def loop_closure_metrics(
    scores: Sequence[float], correct: Sequence[bool], has_match: Sequence[bool] | None = None,
    score_name: str = "similarity",
) -> dict[str, Any]:
    """The precision-recall summary of accepting top-1 matches by a score threshold.

    Args:
        scores, correct, has_match: see `precision_recall_curve`.
        score_name: what the scores are (recorded in the result).

    Returns:
        Plain data: ``score``, ``queries_num``, ``matchable_num``, ``average_precision``
        (AUC-PR, in [0, 1]), ``recall_at_100_precision`` (the largest recall with no false
        match accepted, 0 when even the best score is wrong) and ``threshold_at_100_precision``
        (the lowest score reaching it, None then), ``best_f1`` with ``best_f1_threshold``
        (the highest threshold of the best F1; None when no match is correct), and the curve
        (``thresholds``, ``precision``, ``recall``).
    """
    curve = precision_recall_curve(scores, correct, has_match)
    queries_num = int(np.asarray(scores).size)
    precision = np.asarray(curve["precision"])
    recall = np.asarray(curve["recall"])
    thresholds = curve["thresholds"]
    average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    perfect = np.flatnonzero(precision == 1.0)
    # Precision stays 1 only on a prefix; the last point of that prefix has the most recall.
    prefix = perfect[perfect == np.arange(len(perfect))]
    at_full = int(prefix[-1]) if len(prefix) else None
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(precision),
                   where=denominator > 0)
    best = int(np.argmax(f1)) if len(f1) and f1.max() > 0 else None
    return {
        "score": score_name,
        "queries_num": queries_num,
        "matchable_num": queries_num if has_match is None else int(np.sum(has_match)),
        "average_precision": average_precision,
        "recall_at_100_precision": float(recall[at_full]) if at_full is not None else 0.0,
        "threshold_at_100_precision": thresholds[at_full] if at_full is not None else None,
        "best_f1": float(f1[best]) if best is not None else 0.0,
        "best_f1_threshold": thresholds[best] if best is not None else None,
        **curve,
    }


def plot_precision_recall(curves: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """Saves a PNG of precision against recall, one line per entry of ``curves``.

    Args:
        curves: ``{label: loop_closure_metrics(...)}``.
        path: the PNG file to write.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.subplots()
    for label, metrics in curves.items():
        # Start at recall 0 with the first point's precision: the step plot reads left to right.
        recall = [0.0] + [100 * value for value in metrics["recall"]]
        precision = [100 * value for value in metrics["precision"][:1] + metrics["precision"]]
        axes.step(recall, precision, where="post",
                  label=f"{label} (AP {metrics['average_precision']:.3f}, "
                        f"R@100%P {100 * metrics['recall_at_100_precision']:.1f}%)")
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 101)
    axes.set_xlabel("recall (%): correct loop closures accepted")
    axes.set_ylabel("precision (%)")
    axes.set_title("top-1 match accepted when its score >= threshold")
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(fontsize="small")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
