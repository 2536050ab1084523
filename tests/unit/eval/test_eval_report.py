"""Richer evaluation: groups, thresholds, localization error, reports, indexes, extraction."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vpr.data.geotag import GeoTag, format_filename
from vpr.eval.extract import ImageFolderDataset, extract_descriptors
from vpr.eval.grouping import GroupRule, parse_group_rule, query_groups
from vpr.eval.metrics import (
    localization_error_stats,
    localization_errors,
    recall_at_n,
    recall_per_group,
    recall_per_threshold,
)
from vpr.eval.report import evaluate_retrieval, per_query_rows, write_results
from vpr.eval.search import (
    INDEX_KINDS,
    add_to_index,
    build_index,
    load_index,
    rerank,
    save_index,
    search,
    search_index,
)


def name(east: float, north: float, note: str) -> str:
    return format_filename(GeoTag(utm_east=east, utm_north=north, note=note))


def positives(*lists: list[int]) -> list[np.ndarray]:
    return [np.array(items, dtype=np.int64) for items in lists]


# ---- grouping


def test_default_rule_finds_tokyo_conditions_in_file_names():
    paths = [f"set/queries/{name(0, 0, f'q{i:04d}_{c}')}" for i, c in
             enumerate(["day", "night", "sunset", "night", "day-fog"])]
    assert query_groups(paths) == ["day", "night", "sunset", "night", "day"]
    assert query_groups(paths, "auto") == query_groups(paths, None)


def test_default_rule_groups_nothing_unless_every_query_matches():
    paths = [name(0, 0, "q0_day"), name(0, 0, "q1_plain")]
    assert query_groups(paths) is None
    assert query_groups(paths, "none") is None


def test_field_regex_and_folder_rules():
    paths = [f"t/queries/a/{name(0, 0, 'x_1')}", f"t/queries/b/{name(0, 0, 'y_2')}",
             f"t/queries/{name(0, 0, 'x_3')}"]
    assert query_groups(paths, "field:note") == ["x_1", "y_2", "x_3"]
    # The first capture group names the group; names that do not match are "unmatched".
    assert query_groups(paths, r"regex:@(x|z)_\d@") == ["x", "unmatched", "x"]
    assert query_groups(paths, "regex:y_2") == ["unmatched", "y_2", "unmatched"]
    assert query_groups(paths, "folder") == ["a", "b", "."]


def test_group_rule_errors():
    with pytest.raises(ValueError, match="unknown @-field"):
        parse_group_rule("field:colour")
    with pytest.raises(ValueError, match="bad pattern"):
        parse_group_rule("regex:(")
    with pytest.raises(ValueError, match="unknown group rule"):
        parse_group_rule("city")
    assert str(parse_group_rule("field:note")) == "field:note"
    assert parse_group_rule(None) == GroupRule("auto")


# ---- metrics


def test_recall_per_group_against_hand_computed_values():
    predictions = np.array([[0, 1], [1, 0], [2, 3], [3, 2]])
    groups = ["day", "night", "day", "night"]
    # day: query 0 right at rank 1, query 2 never; night: query 1 right at 2, query 3 at 1.
    recalls = recall_per_group(predictions, positives([0], [0], [9], [3]), groups, (1, 2))
    assert recalls == {"day": {1: 50.0, 2: 50.0}, "night": {1: 50.0, 2: 100.0}}
    assert list(recalls) == ["day", "night"]


def test_recall_per_threshold_recomputes_positives():
    database_utm = np.array([[0.0, 0.0], [30.0, 0.0], [80.0, 0.0]])
    query_utm = np.array([[0.0, 20.0], [0.0, 0.0]])
    # Query 0 is 20 m from db0, 36 m from db1, 82 m from db2; query 1 sits on db0.
    predictions = np.array([[1, 0], [2, 1]])
    recalls = recall_per_threshold(predictions, query_utm, database_utm, (10, 25, 50, 100),
                                   (1, 2))
    assert recalls == {
        10.0: {1: 0.0, 2: 0.0},  # nothing within 10 m except db0, never predicted by q1
        25.0: {1: 0.0, 2: 50.0},  # q0 finds db0 at rank 2
        50.0: {1: 50.0, 2: 100.0},  # q0: db1 (36 m) at rank 1; q1: db1 (30 m) at rank 2
        100.0: {1: 100.0, 2: 100.0},
    }


def test_localization_error_on_hand_placed_points():
    database_utm = np.array([[0.0, 0.0], [3.0, 4.0], [100.0, 0.0], [0.0, 2000.0]])
    query_utm = np.zeros((4, 2))
    predictions = np.array([[0, 1], [1, 0], [2, 0], [3, 0]])
    errors = localization_errors(predictions, query_utm, database_utm)
    np.testing.assert_allclose(errors, [0.0, 5.0, 100.0, 2000.0])
    stats = localization_error_stats(errors)
    # Sorted errors 0, 5, 100, 2000: the median is (5 + 100) / 2.
    assert stats["median_m"] == pytest.approx(52.5)
    assert stats["mean_m"] == pytest.approx(526.25)
    assert stats["within_25m"] == 50.0
    assert stats["within_100m"] == 75.0
    assert stats["within_1000m"] == 75.0
    assert stats["queries_num"] == 4


def test_localization_error_without_predictions_or_queries():
    errors = localization_errors(np.zeros((2, 0), np.int64), np.zeros((2, 2)), np.zeros((3, 2)))
    assert np.isinf(errors).all()
    stats = localization_error_stats(errors)
    assert stats["mean_m"] is None and stats["within_1000m"] == 0.0
    assert localization_error_stats(np.array([]))["median_m"] is None


# ---- full report


@pytest.fixture
def small_case():
    """3 database images on a line, 4 queries (2 'day', 2 'night'), hand-made predictions."""
    database_utm = np.array([[0.0, 0.0], [40.0, 0.0], [200.0, 0.0]])
    database_paths = [f"db/{name(e, n, f'db{i}')}" for i, (e, n) in enumerate(database_utm)]
    query_utm = np.array([[5.0, 0.0], [40.0, 20.0], [200.0, 60.0], [0.0, 0.0]])
    notes = ["q0_day", "q1_night", "q2_day", "q3_night"]
    query_paths = [f"queries/{name(e, n, note)}" for (e, n), note in zip(query_utm, notes)]
    predictions = np.array([[0, 1, 2], [0, 1, 2], [2, 1, 0], [1, 0, 2]])
    distances = np.array([[0.1, 0.5, 0.9], [0.2, 0.3, 0.9], [0.4, 0.8, 0.9],
                          [0.3, 0.35, 0.9]], np.float32)
    return database_utm, query_utm, query_paths, database_paths, predictions, distances


def test_evaluate_retrieval_on_a_hand_made_case(small_case):
    results = evaluate_retrieval(*small_case, n_values=(1, 2), thresholds=(25, 100))
    # At 25 m: q0 -> db0 (5 m) rank 1; q1 -> db1 (20 m) rank 2; q2: db2 is 60 m away: miss;
    # q3 -> db0 (0 m) rank 2.
    assert results["recalls"] == {"R@1": 25.0, "R@2": 75.0}
    assert results["recalls_per_threshold"] == {
        "25m": {"R@1": 25.0, "R@2": 75.0},
        # At 100 m every top-1 counts: q0 5 m, q1 44.7 m, q2 60 m, q3 40 m.
        "100m": {"R@1": 100.0, "R@2": 100.0},
    }
    assert results["group_rule"] == "regex:(day|sunset|night)"
    assert results["recalls_per_group"] == {
        "day": {"queries_num": 2, "recalls": {"R@1": 50.0, "R@2": 50.0}},
        "night": {"queries_num": 2, "recalls": {"R@1": 0.0, "R@2": 100.0}},
    }
    # Top-1 errors: 5, sqrt(40^2+20^2)=44.7, 60, 40 m -> median (40 + 44.72) / 2.
    error = results["localization_error"]
    assert error["median_m"] == pytest.approx((40 + np.hypot(40, 20)) / 2)
    assert error["within_25m"] == 25.0 and error["within_100m"] == 100.0
    assert results["top1_descriptor_distance"]["median_correct"] == pytest.approx(0.1)
    assert results["queries_num"] == 4 and results["database_num"] == 3
    json.dumps(results)  # plain data only


def test_evaluate_retrieval_uses_given_positives_and_rules(small_case):
    database_utm, query_utm, query_paths, database_paths, predictions, distances = small_case
    given = positives([0], [1], [2], [0])
    results = evaluate_retrieval(database_utm, query_utm, query_paths, database_paths,
                                 predictions, None, n_values=(1,), thresholds=(),
                                 group_rule="none", positives_per_query=given)
    assert results["recalls"] == {"R@1": 50.0}
    assert results["recalls"]["R@1"] == recall_at_n(predictions, given, (1,))[1]
    assert results["group_rule"] is None and results["recalls_per_group"] == {}
    assert "top1_descriptor_distance" not in results


def test_per_query_rows_and_written_files(small_case, tmp_path: Path):
    database_utm, query_utm, query_paths, database_paths, predictions, distances = small_case
    rows = per_query_rows(database_utm, query_utm, query_paths, database_paths, predictions,
                          distances, top_k=2)
    assert len(rows) == 4
    assert list(rows[0]) == [
        "query_index", "query_path", "group", "correct", "first_correct_rank", "top1_error_m",
        "top1_path", "top1_distance_m", "top1_correct", "top1_descriptor_distance",
        "top2_path", "top2_distance_m", "top2_correct", "top2_descriptor_distance",
    ]
    assert rows[1]["group"] == "night" and rows[1]["correct"] is False
    assert rows[1]["first_correct_rank"] == 2
    assert rows[1]["top2_distance_m"] == 20.0 and rows[1]["top2_path"] == database_paths[1]
    assert rows[2]["first_correct_rank"] == ""

    results = evaluate_retrieval(*small_case, n_values=(1, 2, 3))
    written = write_results(tmp_path / "out", results, rows)
    assert json.loads(written["json"].read_text())["recalls"] == results["recalls"]
    with open(written["csv"], newline="") as file:
        table = list(csv.DictReader(file))
    assert len(table) == 4
    assert table[0]["query_path"] == query_paths[0]
    assert table[0]["top1_distance_m"] == "5.0" and table[0]["correct"] == "True"
    assert written["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- scalable search


@pytest.fixture(scope="module")
def clustered():
    """2,000 points in 20 tight, well separated clusters; queries near chosen points."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 32)).astype(np.float32) * 3
    database = centres[rng.integers(0, 20, 2000)] + rng.normal(size=(2000, 32)) * 0.3
    chosen = rng.choice(2000, 50, replace=False)
    queries = database[chosen] + rng.normal(size=(50, 32)) * 0.01
    return database.astype(np.float32), queries.astype(np.float32), chosen


@pytest.mark.parametrize("kind", INDEX_KINDS)
@pytest.mark.parametrize("pca_dim", [None, 16])
def test_indexes_find_the_exact_neighbour_on_easy_data(clustered, kind, pca_dim):
    database, queries, chosen = clustered
    index = build_index(database, kind=kind, pca_dim=pca_dim, nprobe=8)
    assert index.ntotal == len(database) and index.d == 32
    scores, indices = search_index(index, queries, 5)
    assert scores.shape == indices.shape == (50, 5)
    top1 = indices[:, 0]
    # PQ codes are lossy: ask for the true neighbour among the top 5 there.
    found = (indices == chosen[:, None]).any(1) if kind == "ivfpq" else top1 == chosen
    assert found.mean() >= 0.95
    _, exact = search(database, queries, 1)
    np.testing.assert_array_equal(exact[:, 0], chosen)


def test_index_from_npy_file_save_load_and_add(clustered, tmp_path: Path):
    database, queries, chosen = clustered
    # Inner product ranks like L2 only for unit vectors, as vpr descriptors are.
    database = database / np.linalg.norm(database, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    np.save(tmp_path / "d.npy", database[:1500])
    index = build_index(tmp_path / "d.npy", kind="ivf", metric="ip", chunk_rows=256)
    assert index.ntotal == 1500
    add_to_index(index, database[1500:])
    save_index(index, tmp_path / "i.faiss")
    loaded = load_index(tmp_path / "i.faiss", nprobe=4)
    scores, indices = search_index(loaded, queries, 1)
    assert (indices[:, 0] == chosen).mean() >= 0.95
    # Inner products: the best score comes first.
    assert scores.shape == (50, 1)


def test_rerank_restores_exact_order_of_compressed_candidates(clustered, tmp_path: Path):
    database, queries, chosen = clustered
    np.save(tmp_path / "d.npy", database)
    on_disk = np.load(tmp_path / "d.npy", mmap_mode="r")
    exact_distances, exact = search(database, queries, 3)
    # Candidates in a scrambled order, one missing (-1): re-ranking sorts them exactly.
    candidates = np.concatenate([exact[:, ::-1], np.full((len(queries), 1), -1)], axis=1)
    scores, indices = rerank(on_disk, queries, candidates, 3)
    np.testing.assert_array_equal(indices, exact)
    np.testing.assert_allclose(scores, exact_distances, rtol=1e-4, atol=1e-4)
    index = build_index(on_disk, kind="ivfpq", pca_dim=16, nprobe=8)
    _, reranked = search_index(index, queries, 1, rerank_with=on_disk)
    np.testing.assert_array_equal(reranked[:, 0], chosen)


def test_index_errors(clustered):
    database = clustered[0]
    with pytest.raises(ValueError, match="unknown index kind"):
        build_index(database, kind="lsh")
    with pytest.raises(ValueError, match="must divide"):
        build_index(database, kind="ivfpq", m=5)
    with pytest.raises((RuntimeError, ValueError), match="GPU"):
        build_index(database, use_gpu=True)
    with pytest.raises(FileNotFoundError):
        load_index("/nonexistent/index.faiss")


# ---- descriptor extraction


class TinyModel(nn.Module):
    """Mean colour per quadrant: a 12-D descriptor, fast and deterministic."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(images).flatten(1)


def test_extraction_to_memmap_equals_in_memory(tmp_path: Path):
    from helpers.images import write_image

    from vpr.inputs.transforms import eval_transform

    paths = [write_image(tmp_path / "img", i, 0, f"n{i}", seed=i) for i in range(7)]
    dataset = ImageFolderDataset(paths, eval_transform((16, 16)))
    assert len(dataset) == 7 and dataset[3][1] == 3
    in_memory = extract_descriptors(TinyModel(), dataset, batch_size=3, progress=False)
    on_disk = extract_descriptors(TinyModel(), dataset, out_path=tmp_path / "d.npy",
                                  batch_size=3, progress=False)
    assert isinstance(on_disk, np.memmap) and not isinstance(in_memory, np.memmap)
    assert in_memory.shape == (7, 12) and in_memory.dtype == np.float32
    np.testing.assert_array_equal(on_disk, in_memory)
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), in_memory)
    # No temporary file is left beside the result.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npy", "img"]
    # Row i is image i: compare with a direct forward pass.
    expected = TinyModel()(dataset[5][0][None]).numpy()[0]
    np.testing.assert_allclose(in_memory[5], expected, rtol=1e-6)


def test_extraction_precision_and_errors(tmp_path: Path):
    from helpers.images import write_image

    from vpr.inputs.transforms import eval_transform

    paths = [write_image(tmp_path, i, 0, f"n{i}", seed=i) for i in range(2)]
    dataset = ImageFolderDataset(paths, eval_transform((16, 16)))
    bf16 = extract_descriptors(TinyModel(), dataset, precision="bf16-mixed", progress=False)
    assert bf16.dtype == np.float32 and bf16.shape == (2, 12)
    with pytest.raises(ValueError, match="unknown precision"):
        extract_descriptors(TinyModel(), dataset, precision="8", progress=False)
