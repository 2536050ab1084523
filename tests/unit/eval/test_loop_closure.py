"""Loop-closure metrics: precision-recall of accepting top-1 matches, by hand and by loop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vpr.eval.loop_closure import loop_closure_metrics, precision_recall_curve
from vpr.eval.report import evaluate_retrieval, per_query_rows, write_results


def test_all_correct():
    metrics = loop_closure_metrics([0.9, 0.7, 0.8], [True, True, True])
    assert metrics["thresholds"] == [0.9, 0.8, 0.7]
    assert metrics["precision"] == [1.0, 1.0, 1.0]
    assert metrics["recall"] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert metrics["average_precision"] == pytest.approx(1.0)
    assert metrics["recall_at_100_precision"] == 1.0
    assert metrics["threshold_at_100_precision"] == 0.7
    assert metrics["best_f1"] == pytest.approx(1.0)
    assert metrics["best_f1_threshold"] == 0.7


def test_all_wrong():
    metrics = loop_closure_metrics([0.9, 0.8], [False, False])
    assert metrics["precision"] == [0.0, 0.0] and metrics["recall"] == [0.0, 0.0]
    assert metrics["average_precision"] == 0.0
    assert metrics["recall_at_100_precision"] == 0.0
    assert metrics["threshold_at_100_precision"] is None
    assert metrics["best_f1"] == 0.0 and metrics["best_f1_threshold"] is None


@pytest.mark.parametrize("correct", [[True, True, False, True], [True, False, True, True]])
def test_ties_enter_together(correct):
    # 0.8 twice: one correct, one wrong; whichever comes first, both are accepted at once.
    metrics = loop_closure_metrics([0.9, 0.8, 0.8, 0.5], correct)
    assert metrics["thresholds"] == [0.9, 0.8, 0.5]
    assert metrics["precision"] == pytest.approx([1.0, 2 / 3, 3 / 4])
    assert metrics["recall"] == pytest.approx([0.25, 0.5, 0.75])
    # 0.25 * 1 + 0.25 * 2/3 + 0.25 * 3/4
    assert metrics["average_precision"] == pytest.approx(0.25 + 1 / 6 + 0.1875)
    assert metrics["recall_at_100_precision"] == 0.25
    assert metrics["threshold_at_100_precision"] == 0.9
    # F1: 0.4, 4/7, 0.75
    assert metrics["best_f1"] == pytest.approx(0.75)
    assert metrics["best_f1_threshold"] == 0.5


def test_mixed_case_with_a_query_that_has_no_true_match():
    scores = [0.95, 0.9, 0.6, 0.4, 0.3]
    correct = [True, False, True, False, True]
    has_match = [True, True, True, False, True]  # 4 matchable queries
    metrics = loop_closure_metrics(scores, correct, has_match)
    assert metrics["matchable_num"] == 4 and metrics["queries_num"] == 5
    assert metrics["precision"] == pytest.approx([1.0, 0.5, 2 / 3, 0.5, 0.6])
    assert metrics["recall"] == pytest.approx([0.25, 0.25, 0.5, 0.5, 0.75])
    assert metrics["average_precision"] == pytest.approx(0.25 + 0.25 * 2 / 3 + 0.25 * 0.6)
    assert metrics["recall_at_100_precision"] == 0.25
    # F1: 0.4, 1/3, 4/7, 0.5, 2/3
    assert metrics["best_f1"] == pytest.approx(2 / 3)
    assert metrics["best_f1_threshold"] == 0.3


def test_curve_matches_a_plain_loop_over_thresholds():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 8, size=60) / 8  # many ties
    has_match = rng.random(60) < 0.9
    correct = has_match & (rng.random(60) < 0.6 + 0.4 * scores)
    curve = precision_recall_curve(scores, correct, has_match)
    expected_thresholds = sorted(set(scores.tolist()), reverse=True)
    assert curve["thresholds"] == expected_thresholds
    for threshold, precision, recall in zip(*curve.values()):
        accepted = [i for i in range(60) if scores[i] >= threshold]
        hits = sum(bool(correct[i]) for i in accepted)
        assert precision == pytest.approx(hits / len(accepted))
        assert recall == pytest.approx(hits / has_match.sum())
    metrics = loop_closure_metrics(scores, correct, has_match)
    area, previous = 0.0, 0.0
    for precision, recall in zip(curve["precision"], curve["recall"]):
        area += (recall - previous) * precision
        previous = recall
    assert metrics["average_precision"] == pytest.approx(area)


def test_inconsistent_inputs_are_refused():
    with pytest.raises(ValueError, match="must be equal"):
        loop_closure_metrics([0.5, 0.4], [True])
    with pytest.raises(ValueError, match="without a true match"):
        loop_closure_metrics([0.5], [True], [False])


def test_results_json_has_loop_closure_and_a_pr_plot(tmp_path):
    database_utm = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0]])
    query_utm = np.array([[1.0, 0.0], [101.0, 0.0], [199.0, 0.0]])
    predictions = np.array([[0, 1], [0, 1], [2, 1]])  # query 1 is wrong
    # squared L2 distances of normalised descriptors: similarity = 1 - d / 2
    distances = np.array([[0.2, 1.0], [0.4, 0.5], [0.6, 1.0]])
    paths = [f"q{i}.jpg" for i in range(3)]
    results = evaluate_retrieval(database_utm, query_utm, paths,
                                 [f"d{i}.jpg" for i in range(3)], predictions, distances,
                                 n_values=(1, 2), group_rule=None)
    closure = results["loop_closure"]
    assert closure["thresholds"] == pytest.approx([0.9, 0.8, 0.7])
    assert closure["precision"] == pytest.approx([1.0, 0.5, 2 / 3])
    assert closure["recall_at_100_precision"] == pytest.approx(1 / 3)
    assert closure["threshold_at_100_precision"] == pytest.approx(0.9)
    rows = per_query_rows(database_utm, query_utm, paths, [f"d{i}.jpg" for i in range(3)],
                          predictions, distances, group_rule=None)
    written = write_results(tmp_path, results, rows)
    assert written["pr_plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["loop_closure"]["average_precision"] == pytest.approx(
        closure["average_precision"])
