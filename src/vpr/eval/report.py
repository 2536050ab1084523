"""A full evaluation of retrieval predictions, and writing it as JSON, CSV and a PNG plot.

`evaluate_retrieval` gathers the overall, per-group and per-threshold recalls and the
localization error into plain data; `per_query_rows` lists each query's top predictions;
`write_results` saves both.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np

from vpr.data.datasets import positives_within
from vpr.eval.grouping import GroupRule, describe_rule, query_groups
from vpr.eval.loop_closure import loop_closure_metrics, plot_precision_recall
from vpr.eval.metrics import (
    localization_error_stats,
    localization_errors,
    recall_at_n,
    recall_per_group,
    recall_per_threshold,
)
from vpr.utils.atomic import write_bytes_atomic, write_json_atomic

RESULTS_JSON = "results.json"
PER_QUERY_CSV = "per_query.csv"
RECALL_PLOT = "recall_at_n.png"
PR_PLOT = "precision_recall.png"


def _named(recalls: dict[int, float]) -> dict[str, float]:
    # JSON keys are strings; "R@N" is how every other vpr result file names them.
    return {f"R@{n}": value for n, value in recalls.items()}


def _threshold_key(threshold: float) -> str:
    return f"{threshold:g}m"


def evaluate_retrieval(
    database_utm: np.ndarray,
    query_utm: np.ndarray,
    query_paths: Sequence[str | Path],
    database_paths: Sequence[str | Path],
    predictions: np.ndarray,
    distances: np.ndarray | None = None,
    n_values: Sequence[int] = (1, 5, 10, 20),
    thresholds: Sequence[float] = (10.0, 25.0, 50.0, 100.0),
    group_rule: str | GroupRule | None = "auto",
    positive_dist_threshold: float = 25.0,
    positives_per_query: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Evaluates retrieval predictions from every angle; returns plain (JSON-ready) data.

    Args:
        database_utm: (N, 2) database UTM east/north in metres.
        query_utm: (Q, 2) query UTM east/north in metres.
        query_paths: the Q query image paths (groups are read from them).
        database_paths: the N database image paths (only their number is used here).
        predictions: (Q, k) database indices, best first.
        distances: (Q, k) descriptor distances of the predictions, or None; when given, the
            median top-1 distance of correct and of wrong queries is reported (how well a
            distance threshold could tell them apart).
        n_values: the N of Recall@N.
        thresholds: distances in metres for the per-threshold recalls.
        group_rule: how to group queries (see `vpr.eval.grouping`); ``"auto"`` finds
            day/sunset/night in Tokyo-like file names.
        positive_dist_threshold: metres within which a prediction is correct for the
            overall and per-group recalls.
        positives_per_query: the positives at ``positive_dist_threshold`` when already
            known (e.g. from a `RetrievalSet`); computed from the coordinates otherwise.

    Returns:
        ``{"queries_num", "database_num", "positive_dist_threshold", "recalls",
        "recalls_per_threshold", "group_rule", "recalls_per_group",
        "localization_error", ("top1_descriptor_distance", "loop_closure")}`` where recalls are
        ``{"R@N": percent}``, per threshold keyed ``"25m"``, per group
        ``{group: {"queries_num", "recalls"}}`` (empty when no grouping applies).
    """
    predictions = np.asarray(predictions)
    database_utm = np.asarray(database_utm, dtype=np.float64).reshape(-1, 2)
    query_utm = np.asarray(query_utm, dtype=np.float64).reshape(-1, 2)
    if len(query_paths) != len(query_utm) or predictions.shape[0] != len(query_utm):
        raise ValueError(
            f"{len(query_paths)} query paths, {len(query_utm)} query coordinates and "
            f"{predictions.shape[0]} rows of predictions: they must be equal"
        )
    if len(database_paths) != len(database_utm):
        raise ValueError(
            f"{len(database_paths)} database paths but {len(database_utm)} coordinates"
        )
    if positives_per_query is None:
        positives_per_query = positives_within(query_utm, database_utm, positive_dist_threshold)
    groups = query_groups(query_paths, group_rule)
    per_group: dict[str, Any] = {}
    if groups is not None:
        sizes = {group: groups.count(group) for group in set(groups)}
        for group, recalls in recall_per_group(
            predictions, positives_per_query, groups, n_values
        ).items():
            per_group[group] = {"queries_num": sizes[group], "recalls": _named(recalls)}
    results: dict[str, Any] = {
        "queries_num": len(query_paths),
        "database_num": len(database_paths),
        "positive_dist_threshold": float(positive_dist_threshold),
        "recalls": _named(recall_at_n(predictions, positives_per_query, n_values)),
        "recalls_per_threshold": {
            _threshold_key(threshold): _named(recalls)
            for threshold, recalls in recall_per_threshold(
                predictions, query_utm, database_utm, thresholds, n_values
            ).items()
        },
        "group_rule": describe_rule(group_rule) if groups is not None else None,
        "recalls_per_group": per_group,
        "localization_error": localization_error_stats(
            localization_errors(predictions, query_utm, database_utm)
        ),
    }
    if distances is not None and predictions.shape[1] > 0 and len(query_paths) > 0:
        top1 = np.asarray(distances, dtype=np.float64)[:, 0]
        correct = np.array([
            predictions[i, 0] in set(np.asarray(p).tolist())
            for i, p in enumerate(positives_per_query)
        ])
        results["top1_descriptor_distance"] = {
            "median_correct": float(np.median(top1[correct])) if correct.any() else None,
            "median_wrong": float(np.median(top1[~correct])) if (~correct).any() else None,
        }
        # vpr descriptors are L2-normalised: cosine similarity = 1 - squared distance / 2.
        results["loop_closure"] = loop_closure_metrics(
            1.0 - top1 / 2.0, correct, [len(p) > 0 for p in positives_per_query])
    return results


def per_query_rows(
    database_utm: np.ndarray,
    query_utm: np.ndarray,
    query_paths: Sequence[str | Path],
    database_paths: Sequence[str | Path],
    predictions: np.ndarray,
    distances: np.ndarray | None = None,
    top_k: int = 5,
    positive_dist_threshold: float = 25.0,
    group_rule: str | GroupRule | None = "auto",
) -> list[dict[str, Any]]:
    """One row per query: its path and group, and its top-k predictions with their distance.

    Columns: ``query_index, query_path, group, correct`` (top-1 within
    ``positive_dist_threshold``), ``first_correct_rank`` (1-based, empty when none in the
    top k), ``top1_error_m``, then for each rank r = 1..k: ``top{r}_path``,
    ``top{r}_distance_m`` (metres from the query), ``top{r}_correct`` and, when
    ``distances`` is given, ``top{r}_descriptor_distance``.
    """
    predictions = np.asarray(predictions)
    database_utm = np.asarray(database_utm, dtype=np.float64).reshape(-1, 2)
    query_utm = np.asarray(query_utm, dtype=np.float64).reshape(-1, 2)
    top_k = min(top_k, predictions.shape[1])
    groups = query_groups(query_paths, group_rule) or [""] * len(query_paths)
    rows = []
    for query_index, query_path in enumerate(query_paths):
        shown = predictions[query_index, :top_k]
        metres = np.linalg.norm(database_utm[shown] - query_utm[query_index], axis=1)
        correct = metres <= positive_dist_threshold
        hits = np.flatnonzero(correct)
        row: dict[str, Any] = {
            "query_index": query_index,
            "query_path": str(query_path),
            "group": groups[query_index],
            "correct": bool(correct[0]) if top_k else False,
            "first_correct_rank": int(hits[0]) + 1 if len(hits) else "",
            "top1_error_m": round(float(metres[0]), 2) if top_k else "",
        }
        for rank in range(top_k):
            prefix = f"top{rank + 1}"
            row[f"{prefix}_path"] = str(database_paths[shown[rank]])
            row[f"{prefix}_distance_m"] = round(float(metres[rank]), 2)
            row[f"{prefix}_correct"] = bool(correct[rank])
            if distances is not None:
                row[f"{prefix}_descriptor_distance"] = float(distances[query_index, rank])
        rows.append(row)
    return rows


def plot_recalls(results: dict[str, Any], path: str | Path) -> Path:
    """Saves a PNG of Recall@N against N: one line for all queries, one per group."""
    # A bare Figure renders with Agg and never touches pyplot's global backend or state, so
    # this works on servers without a display and inside a user's notebook alike.
    from matplotlib.figure import Figure

    def curve(recalls: dict[str, float]) -> tuple[list[int], list[float]]:
        points = sorted((int(name.split("@")[1]), value) for name, value in recalls.items())
        return [n for n, _ in points], [value for _, value in points]

    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.subplots()
    lines = [(f"all ({results['queries_num']})", results["recalls"])]
    lines += [(f"{group} ({data['queries_num']})", data["recalls"])
              for group, data in results.get("recalls_per_group", {}).items()]
    for label, recalls in lines:
        n_values, values = curve(recalls)
        axes.plot(n_values, values, marker="o", label=label)
    axes.set_xscale("log")
    n_values = curve(results["recalls"])[0]
    axes.set_xticks(n_values, [str(n) for n in n_values])
    axes.set_ylim(0, 100)
    axes.set_xlabel("N")
    axes.set_ylabel(f"Recall@N (%), within {results['positive_dist_threshold']:g} m")
    axes.grid(alpha=0.3)
    axes.legend(title=results.get("group_rule") or None)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def write_results(
    out_dir: str | Path, results: dict[str, Any], per_query_rows: Sequence[dict[str, Any]]
) -> dict[str, Path]:
    """Writes ``results.json``, ``per_query.csv``, ``recall_at_n.png`` and (when the results
    have loop-closure metrics) ``precision_recall.png`` into ``out_dir``.

    Args:
        out_dir: the folder (created if needed).
        results: the output of `evaluate_retrieval` (more keys may be added by the caller).
        per_query_rows: the output of `per_query_rows`.

    Returns:
        ``{"json", "csv", "plot"}``: the paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / RESULTS_JSON
    write_json_atomic(json_path, results)
    csv_path = out_dir / PER_QUERY_CSV
    # Rows of queries with fewer predictions have fewer columns: the header is their union.
    columns: list[str] = []
    for row in per_query_rows:
        columns += [column for column in row if column not in columns]
    buffer = StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(per_query_rows)
    write_bytes_atomic(csv_path, buffer.getvalue().encode())
    plot_path = plot_recalls(results, out_dir / RECALL_PLOT)
    written = {"json": json_path, "csv": csv_path, "plot": plot_path}
    if "loop_closure" in results:
        curves = {"top-1 similarity": results["loop_closure"]}
        rerank = results.get("rerank") or {}
        if rerank.get("loop_closure_inliers"):
            curves["re-ranked top-1 inliers"] = rerank["loop_closure_inliers"]
        written["pr_plot"] = plot_precision_recall(curves, out_dir / PR_PLOT)
    return written
