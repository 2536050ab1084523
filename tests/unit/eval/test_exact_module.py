"""`vpr.eval.exact` without faiss: an ExactIndex still reads as a faiss L2 index."""

from __future__ import annotations

import faiss
import numpy as np

import vpr.eval.search as search_module
from vpr.eval.exact import METRIC_L2, ExactIndex, rerank, search_rows
from vpr.eval.search import index_metric


def test_exact_index_metric_is_faiss_l2() -> None:
    # exact.py writes faiss's enum value by hand; faiss must agree or index_metric misreads.
    assert METRIC_L2 == faiss.METRIC_L2
    index = ExactIndex(np.zeros((3, 2), np.float32))
    assert index.metric_type == faiss.METRIC_L2
    assert index_metric(index) == "l2"


def test_moved_names_still_importable_from_search() -> None:
    assert search_module.ExactIndex is ExactIndex
    assert search_module.search_rows is search_rows
    assert search_module.rerank is rerank


def test_exact_index_searches_like_faiss_flat() -> None:
    # Rows 0..4 on a line; the query at 2.6 is nearest row 3 (0.16), then 2 (0.36), then 4.
    database = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]], np.float32)
    distances, indices = search_module.search_index(
        ExactIndex(database, chunk_rows=2), np.array([[2.6]], np.float32), 3)
    np.testing.assert_array_equal(indices, [[3, 2, 4]])
    np.testing.assert_allclose(distances, [[0.16, 0.36, 1.96]], rtol=1e-5)
