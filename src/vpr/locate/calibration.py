"""Is the confidence of `locate` calibrated? Accuracy per confidence bin over a test set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def prediction_errors(results: Sequence[Any], true_utm: np.ndarray) -> np.ndarray:
    """Metres between each `LocateResult`'s predicted UTM point and the true one (inf if none).

    Args:
        results: `LocateResult`s, one per photo.
        true_utm: (len(results), 2) true UTM east/north (same zone as the predictions).
    """
    true_utm = np.asarray(true_utm, dtype=np.float64).reshape(-1, 2)
    if len(true_utm) != len(results):
        raise ValueError(f"{len(results)} results but {len(true_utm)} true locations")
    errors = np.full(len(results), np.inf)
    for number, result in enumerate(results):
        if result.utm_east is not None:
            errors[number] = np.hypot(result.utm_east - true_utm[number, 0],
                                      result.utm_north - true_utm[number, 1])
    return errors


def calibration_table(
    confidences: Sequence[float],
    errors_m: Sequence[float],
    within_m: float = 25.0,
    bins: Sequence[float] = DEFAULT_BINS,
) -> list[dict[str, Any]]:
    """Accuracy (error within ``within_m``) of the predictions in each confidence bin.

    A calibrated confidence has an accuracy close to the bin's mean confidence.

    Args:
        confidences: the confidence of each prediction, in [0, 1].
        errors_m: the distance in metres from each prediction to the true location
            (inf or nan: not located, counted as wrong).
        within_m: a prediction is accurate within this distance.
        bins: increasing bin edges; the last bin includes its upper edge.

    Returns:
        One row per bin: ``low, high, count, mean_confidence, accuracy`` (accuracy in
        percent; mean_confidence and accuracy are None for an empty bin).
    """
    confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
    errors = np.asarray(errors_m, dtype=np.float64).reshape(-1)
    if len(confidences) != len(errors):
        raise ValueError(f"{len(confidences)} confidences but {len(errors)} errors")
    edges = np.asarray(bins, dtype=np.float64)
    if len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bins must be at least two increasing edges, got {list(bins)}")
    accurate = np.nan_to_num(errors, nan=np.inf) <= within_m
    # digitize puts a value equal to the last edge past the end: clip it into the last bin.
    which = np.clip(np.digitize(confidences, edges) - 1, 0, len(edges) - 2)
    rows = []
    for number in range(len(edges) - 1):
        members = which == number
        count = int(members.sum())
        rows.append({
            "low": float(edges[number]),
            "high": float(edges[number + 1]),
            "count": count,
            "mean_confidence": float(confidences[members].mean()) if count else None,
            "accuracy": float(accurate[members].mean() * 100) if count else None,
        })
    return rows


def expected_calibration_error(rows: Sequence[dict[str, Any]]) -> float | None:
    """Count-weighted mean gap between accuracy and mean confidence, in percentage points."""
    total = sum(row["count"] for row in rows)
    if total == 0:
        return None
    return float(sum(row["count"] * abs(row["accuracy"] - 100 * row["mean_confidence"])
                     for row in rows if row["count"]) / total)


def format_calibration_table(rows: Sequence[dict[str, Any]], within_m: float = 25.0) -> str:
    """The table as aligned text, with the expected calibration error below it."""
    lines = [f"{'confidence':>12} {'queries':>8} {'mean conf':>10} {f'acc@{within_m:g}m':>9}"]
    for row in rows:
        mean = "-" if row["mean_confidence"] is None else f"{row['mean_confidence']:.2f}"
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.1f}%"
        lines.append(f"{row['low']:5.2f}-{row['high']:<5.2f} {row['count']:>9} {mean:>10} "
                     f"{accuracy:>9}")
    ece = expected_calibration_error(rows)
    lines.append("expected calibration error: " + ("-" if ece is None else f"{ece:.1f} points"))
    return "\n".join(lines)
