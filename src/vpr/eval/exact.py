"""Exact scores over the full descriptors (arrays or memmaps), read a chunk at a time.

`search_rows` / `ExactIndex` search all rows (or some) without copying them into a faiss
index; `rerank` re-scores the candidates an approximate index found. Nothing here imports
faiss (`vpr.eval.search` does, and takes `ExactIndex` wherever it takes a faiss index).
"""

from __future__ import annotations

import numpy as np

from vpr.eval.memmap import advise_random, release_pages

# faiss.METRIC_L2 (faiss's MetricType enum), so that `index_metric` reads an ExactIndex as
# a faiss index without this module importing faiss.
METRIC_L2 = 1
# Rows of a memmap read per step when re-ranking (see `rerank`).
RERANK_ROWS = 4096
# Rows compared per step by the exact search over descriptors (measured on 1M x 256: 16384
# and 65536 rows take about the same time; smaller steps pay per-call overheads).
SEARCH_CHUNK_ROWS = 65536


def rerank(
    database_descriptors: np.ndarray,
    query_descriptors: np.ndarray,
    candidates: np.ndarray,
    k: int,
    metric: str = "l2",
) -> tuple[np.ndarray, np.ndarray]:
    """Re-scores each query's candidates with the exact descriptors and keeps the best k.

    Compressed (PQ) or PCA-reduced indexes rank candidates by approximate distances; reading
    the full descriptors of a few candidates per query (from a memmap too) restores exact
    order among them at little cost.

    Args:
        database_descriptors: (N, D) exact descriptors (array or memmap).
        query_descriptors: (Q, D) query descriptors.
        candidates: (Q, c) database indices from an index search; -1 = none.
        k: results kept per query (at most c).
        metric: ``l2`` (squared distances, ascending) or ``ip`` (descending).

    Returns:
        ``(scores, indices)`` like `search_index`: (Q, k), best first, -1 where missing.
    """
    queries = np.ascontiguousarray(query_descriptors, dtype=np.float32)
    candidates = np.asarray(candidates, dtype=np.int64)
    k = min(k, candidates.shape[1])
    valid = candidates >= 0
    # Rows read once each, in file order: the cheapest access pattern for a memmap.
    unique = np.unique(candidates[valid])
    advise_random(database_descriptors)
    vectors = np.empty((len(unique), database_descriptors.shape[1]), np.float32)
    # A few thousand rows at a time, pages released after each: the kernel maps pages
    # around each row read (fault-around), so scattered rows of a large memmap would
    # otherwise make most of the file resident in this process.
    for start in range(0, len(unique), RERANK_ROWS):
        vectors[start : start + RERANK_ROWS] = database_descriptors[
            unique[start : start + RERANK_ROWS]]
        release_pages(database_descriptors)
    if len(unique) == 0:
        missing = np.inf if metric == "l2" else -np.inf
        return (np.full((len(queries), k), missing, np.float32),
                np.full((len(queries), k), -1, np.int64))
    # (Q, c, D) candidate vectors; a missing candidate borrows any row and is masked below.
    gathered = vectors[np.searchsorted(unique, np.where(valid, candidates, unique[0]))]
    if metric == "ip":
        scores = np.einsum("qd,qcd->qc", queries, gathered)
        scores = np.where(valid, scores, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    else:
        scores = ((gathered - queries[:, None, :]) ** 2).sum(-1)
        scores = np.where(valid, scores, np.inf)
        order = np.argsort(scores, axis=1, kind="stable")[:, :k]
    top_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    top_indices = np.take_along_axis(np.where(valid, candidates, -1), order, axis=1)
    return top_scores, top_indices


class ExactIndex:
    """Exact L2 search straight over (memory-mapped) descriptors, with no copy of them.

    A faiss ``IndexFlat`` holds its own copy of every vector, read whole when loaded; this
    reads the rows ``chunk_rows`` at a time while searching, so opening it costs nothing and
    the descriptors file can grow by appending. It answers like ``IndexFlatL2`` (same
    ``search``, ``ntotal``, ``d``, ``metric_type``), so `search_index` takes it too.

    Args:
        descriptors: (N, D) float32 descriptors (array or memmap).
        chunk_rows: database rows compared per step.
    """

    def __init__(self, descriptors: np.ndarray, chunk_rows: int = SEARCH_CHUNK_ROWS) -> None:
        self.descriptors = descriptors
        self.chunk_rows = chunk_rows
        self.metric_type = METRIC_L2

    @property
    def ntotal(self) -> int:
        return int(self.descriptors.shape[0])

    @property
    def d(self) -> int:
        return int(self.descriptors.shape[1])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(squared distances, indices)`` of the k nearest rows, nearest first."""
        return search_rows(self.descriptors, queries, k, chunk_rows=self.chunk_rows)


def search_rows(
    database_descriptors: np.ndarray,
    query_descriptors: np.ndarray,
    k: int,
    ids: np.ndarray | None = None,
    chunk_rows: int = SEARCH_CHUNK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact L2 search among all rows, or only rows ``ids``, read a chunk at a time.

    Args:
        database_descriptors: (N, D) descriptors (array or memmap).
        query_descriptors: (Q, D) queries.
        k: neighbours wanted per query.
        ids: sorted database rows to search among (None: all).
        chunk_rows: rows compared per step (bounds memory whatever N).

    Returns:
        ``(distances, indices)``: (Q, k) float32 squared L2 distances, nearest first, and
        int64 database rows; -1 (distance inf) where fewer than k rows exist.
    """
    queries = np.ascontiguousarray(query_descriptors, dtype=np.float32)
    total = database_descriptors.shape[0] if ids is None else len(ids)
    best_d = np.full((len(queries), k), np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    if len(queries) == 0 or total == 0:
        return best_d, best_i

    query_norms = (queries**2).sum(axis=1)[:, None]
    for start in range(0, total, chunk_rows):
        if ids is None:
            rows = np.arange(start, min(start + chunk_rows, total))
            block = np.asarray(database_descriptors[start : start + chunk_rows], np.float32)
        else:
            rows = np.asarray(ids[start : start + chunk_rows], np.int64)
            block = np.asarray(database_descriptors[rows], np.float32)
        # Pages are kept mapped (unlike index building): the next search reads them again,
        # and a file mapping's pages are shared with other processes through the page cache.
        # |x - q|^2 = |x|^2 - 2 x.q + |q|^2: one matrix product (BLAS, all cores, the
        # block read once at memory speed), as faiss's flat search does for many queries.
        distances = np.einsum("ij,ij->i", block, block)[None, :] - 2.0 * (block @ queries.T).T
        distances += query_norms
        np.maximum(distances, 0.0, out=distances)
        if len(rows) > k:
            keep = np.argpartition(distances, k - 1, axis=1)[:, :k]
        else:
            keep = np.broadcast_to(np.arange(len(rows)), (len(queries), len(rows)))
        merged_d = np.concatenate([best_d, np.take_along_axis(distances, keep, 1)], axis=1)
        merged_i = np.concatenate([best_i, rows[keep]], axis=1)
        # Sorted by distance, then row: among equal distances the earlier row wins, as in
        # faiss's flat search (argpartition does not keep the row order).
        order = np.lexsort((merged_i, merged_d), axis=1)[:, :k]
        best_d = np.take_along_axis(merged_d, order, axis=1).astype(np.float32)
        best_i = np.take_along_axis(merged_i, order, axis=1)
    return best_d, best_i
