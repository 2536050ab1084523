"""Nearest-neighbour search of query descriptors in a database: the only module importing faiss."""

from __future__ import annotations

import faiss
import numpy as np


def search(
    database_descriptors: np.ndarray, query_descriptors: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Finds the ``k`` database items nearest to each query by exact L2 search.

    Args:
        database_descriptors: (N, D) database descriptors.
        query_descriptors: (Q, D) query descriptors.
        k: neighbours wanted per query; clipped to N.

    Returns:
        ``(distances, indices)``: (Q, k) float32 squared L2 distances, nearest first, and
        (Q, k) int64 database indices.
    """
    # faiss reads raw float32 C-contiguous memory: anything else would be misread or copied
    # by its SWIG layer with a less helpful error.
    database = np.ascontiguousarray(database_descriptors, dtype=np.float32)
    queries = np.ascontiguousarray(query_descriptors, dtype=np.float32)
    if database.ndim != 2 or queries.ndim != 2:
        raise ValueError(
            f"descriptors must be 2-D, got database {database.shape} and queries {queries.shape}"
        )
    if database.shape[1] != queries.shape[1]:
        raise ValueError(
            f"descriptor dimensions differ: database has {database.shape[1]}, "
            f"queries have {queries.shape[1]}"
        )
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, database.shape[0])
    if k == 0 or queries.shape[0] == 0:
        # Nothing to search (faiss would reject k == 0): the answer is simply empty.
        shape = (queries.shape[0], k)
        return np.zeros(shape, np.float32), np.zeros(shape, np.int64)
    index = faiss.IndexFlatL2(database.shape[1])
    index.add(database)
    distances, indices = index.search(queries, k)
    return distances.astype(np.float32, copy=False), indices.astype(np.int64, copy=False)
