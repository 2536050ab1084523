"""The one evaluation: descriptors of a retrieval set in, recalls, reports and images out.

Validation, `vpr test`, the demo's untrained baseline, `vpr benchmark` (its protocol's
Recall@N, re-ranked or not) and `vpr export --int8 --test_path` all end here: descriptors
come from `vpr.eval.extract`, this function searches, re-ranks, measures and writes. A test's
``results.json`` is written once, here, with whatever the caller adds (``extra``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vpr.config.schema import EvalConfig
from vpr.eval.predictions import save_predictions
from vpr.eval.report import evaluate_retrieval, per_query_rows, write_results
from vpr.eval.search import search

logger = logging.getLogger(__name__)


class RetrievalData(Protocol):
    """What evaluation reads of a retrieval set (`vpr.data.datasets.RetrievalSet`)."""

    root: Path
    database_num: int
    queries_num: int
    database_utm: np.ndarray
    query_utm: np.ndarray
    database_paths: list[Path]
    query_paths: list[Path]
    positives_per_query: list[np.ndarray]
    positive_dist_threshold: float


def evaluate_set(dataset: RetrievalData, descriptors: np.ndarray, settings: EvalConfig,
                 report_dir: str | Path | None = None, predictions_dir: str | Path | None = None,
                 extra: dict[str, Any] | None = None, reranker: Any = None) -> dict[str, Any]:
    """Searches the database with every query and measures the result.

    Args:
        dataset: the retrieval set (database items first, then queries).
        descriptors: (database_num + queries_num, D) descriptors in dataset order.
        settings: the Recall@N values, distance thresholds, query groups, and how many
            prediction images to save.
        report_dir: where to write ``results.json``, ``per_query.csv`` and the recall plot;
            None writes nothing.
        predictions_dir: where to save prediction image rows (when
            ``settings.num_preds_to_save`` > 0); None saves none.
        extra: items added to the result (and to ``results.json``), e.g. the checkpoint.
        reranker: re-ranks the top candidates (`vpr.rerank.evaluation.EvaluationReranker`:
            ``candidates_needed`` and ``(dataset, predictions, distances) -> (predictions,
            distances, info)``); the result's recalls are then those after re-ranking and
            ``rerank`` holds the settings, timings and the recalls before.

    Returns:
        The result: dataset, sizes, ``recalls`` (``"R@N"`` -> %), per-group and
        per-threshold recalls, localization errors, and ``extra``.
    """
    recall_values = tuple(settings.recall_values)
    database = descriptors[: dataset.database_num]
    queries = descriptors[dataset.database_num:]
    depth = max(recall_values)
    distances, predictions = search(
        database, queries, max(depth, reranker.candidates_needed) if reranker else depth)
    rerank_info = None
    if reranker is not None:
        before = evaluate_retrieval(
            dataset.database_utm, dataset.query_utm, dataset.query_paths,
            dataset.database_paths, predictions, distances, n_values=recall_values,
            group_rule=settings.group_rule, positives_per_query=dataset.positives_per_query,
            positive_dist_threshold=dataset.positive_dist_threshold)
        predictions, distances, rerank_info = reranker(dataset, predictions, distances)
        rerank_info.update({key: before.get(key) for key in
                            ("recalls", "recalls_per_group", "loop_closure")})
    report = evaluate_retrieval(
        dataset.database_utm, dataset.query_utm, dataset.query_paths, dataset.database_paths,
        predictions, distances, n_values=recall_values,
        thresholds=tuple(settings.dist_thresholds), group_rule=settings.group_rule,
        positive_dist_threshold=dataset.positive_dist_threshold,
        positives_per_query=dataset.positives_per_query,
    )
    result = {"dataset": str(dataset.root), "database_num": dataset.database_num,
              "queries_num": dataset.queries_num, **report, **(extra or {})}
    if rerank_info is not None:  # the recalls above are after re-ranking; "before" here
        result["rerank"] = rerank_info
    if report_dir is not None:
        rows = per_query_rows(
            dataset.database_utm, dataset.query_utm, dataset.query_paths,
            dataset.database_paths, predictions, distances,
            top_k=min(5, predictions.shape[1]),
            positive_dist_threshold=dataset.positive_dist_threshold,
            group_rule=settings.group_rule,
        )
        result["results_dir"] = str(report_dir)
        write_results(report_dir, result, rows)
    if settings.num_preds_to_save > 0 and predictions_dir is not None:
        saved = save_predictions(predictions_dir, dataset.query_paths, dataset.database_paths,
                                 predictions, dataset.positives_per_query,
                                 num_preds=settings.num_preds_to_save,
                                 only_wrong=settings.save_only_wrong_preds)
        logger.info("Saved predictions of %d queries in %s", saved, predictions_dir)
    return result
