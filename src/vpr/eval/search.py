"""Nearest-neighbour search of query descriptors in a database: the only module importing faiss.

`search` is the exact search that evaluation uses. `build_index` makes the indexes that
scale past memory or past exact search's speed (IVF, HNSW, IVF-PQ, optionally after a PCA),
from an array or a memory-mapped ``.npy`` file, streamed in chunks; `search_index`,
`save_index` and `load_index` use them, so no other module needs faiss.
"""

from __future__ import annotations

import logging
import math
import mmap
from pathlib import Path
from typing import Any

import faiss
import numpy as np

logger = logging.getLogger(__name__)

INDEX_KINDS = ("flat", "ivf", "hnsw", "ivfpq")
METRICS = {"l2": faiss.METRIC_L2, "ip": faiss.METRIC_INNER_PRODUCT}
# Rows added to an index per call: bounds the float32 copy made of a memory-mapped file.
CHUNK_ROWS = 65536
# How IVF indexes assign vectors and queries to lists: exact, or an HNSW graph of centres.
COARSE_QUANTIZERS = ("flat", "hnsw")
HNSW_COARSE_M = 32
# Rows of a memmap read per step when re-ranking (see `rerank`).
RERANK_ROWS = 4096
# Rows compared per step by the exact search over descriptors (measured on 1M x 256: 16384
# and 65536 rows take about the same time; smaller steps pay per-call overheads).
SEARCH_CHUNK_ROWS = 65536
# k-means wants about 39 training points per centroid (faiss warns below that).
POINTS_PER_CENTROID = 40


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


# ---- scalable indexes


def _open_descriptors(descriptors: np.ndarray | str | Path) -> np.ndarray:
    """The (N, D) descriptors, a ``.npy`` path being memory-mapped rather than read."""
    if isinstance(descriptors, (str, Path)):
        descriptors = np.load(descriptors, mmap_mode="r")
    if descriptors.ndim != 2:
        raise ValueError(f"descriptors must be (N, D), got shape {descriptors.shape}")
    return descriptors


def _release_pages(array: np.ndarray) -> None:
    """Drops the resident pages of a memory-mapped array from this process.

    Pages of a file mapping that were read count in the process's RSS until the kernel
    needs them back; dropping them after each chunk keeps RSS flat while streaming a file
    larger than memory. The data stay in the page cache and are re-read on the next access.
    """
    mapping = getattr(array, "_mmap", None)
    if isinstance(mapping, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        try:
            mapping.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # a closed or unusual mapping: RSS is only a nicety
            pass


def _advise_random(array: np.ndarray) -> None:
    """Turns off read-ahead on a memory-mapped array read at scattered rows (re-ranking).

    Without it each row read faults in the pages around it too, so a few thousand scattered
    rows of a large file map hundreds of megabytes into the process.
    """
    mapping = getattr(array, "_mmap", None)
    if isinstance(mapping, mmap.mmap) and hasattr(mmap, "MADV_RANDOM"):
        try:
            mapping.madvise(mmap.MADV_RANDOM)
        except (OSError, ValueError):
            pass


def _chunks(descriptors: np.ndarray, chunk_rows: int):
    """Yields C-contiguous float32 copies of ``chunk_rows`` rows at a time."""
    for start in range(0, descriptors.shape[0], chunk_rows):
        yield np.ascontiguousarray(descriptors[start : start + chunk_rows], dtype=np.float32)
        _release_pages(descriptors)


def _default_nlist(rows: int) -> int:
    # The usual rule of thumb (about 4 sqrt(N) lists), kept small enough for k-means to
    # have ~40 points per centroid on small databases.
    return int(max(1, min(round(4 * math.sqrt(rows)), rows // POINTS_PER_CENTROID)))


def _default_pq_m(dim: int) -> int:
    # About one byte per 8 dimensions (32 bytes for 256-D): the largest divisor of dim
    # not above dim / 8, since PQ needs m to divide the dimension.
    target = max(1, dim // 8)
    return max(divisor for divisor in range(1, target + 1) if dim % divisor == 0)


def _training_sample(descriptors: np.ndarray, size: int, seed: int,
                     chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """``size`` random rows (all if fewer), read one chunk of the file at a time.

    Picking scattered rows of a memmap in one go would fault in (with read-ahead) nearly
    the whole file at once; going chunk by chunk and releasing each keeps the resident part
    to one chunk.
    """
    rows = descriptors.shape[0]
    if size >= rows:
        chosen = np.arange(rows)
    else:
        chosen = np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False))
    sample = np.empty((len(chosen), descriptors.shape[1]), np.float32)
    filled = 0
    for start in range(0, rows, chunk_rows):
        low, high = np.searchsorted(chosen, [start, start + chunk_rows])
        if high > low:
            block = descriptors[start : start + chunk_rows]
            sample[filled : filled + high - low] = block[chosen[low:high] - start]
            filled += high - low
        _release_pages(descriptors)
    return sample


def gpu_available() -> bool:
    """Whether this faiss build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _to_gpu(index: Any, kind: str) -> Any:
    if not gpu_available():
        raise RuntimeError(
            "use_gpu=True but faiss sees no GPU (this faiss build "
            + ("has GPU support but found no device" if hasattr(faiss, "StandardGpuResources")
               else "is faiss-cpu; install faiss-gpu")
            + "); build the index on the CPU instead"
        )
    if kind == "hnsw":
        raise ValueError("faiss has no GPU HNSW index; use kind='flat', 'ivf' or 'ivfpq' on GPU")
    resources = faiss.StandardGpuResources()
    gpu_index = faiss.index_cpu_to_gpu(resources, 0, index)
    # The GPU index only borrows the resources: keep them alive as long as the index.
    gpu_index.referenced_objects = [resources]
    return gpu_index


def set_search_params(index: Any, nprobe: int | None = None, efSearch: int | None = None) -> None:
    """Sets how much an approximate index explores per query (more = slower, more exact).

    Args:
        index: an index from `build_index` or `load_index` (indexes without the parameter
            ignore it).
        nprobe: inverted lists visited by IVF indexes (clipped to their number of lists).
        efSearch: candidate list size of HNSW indexes.
    """
    if "Gpu" in type(index).__name__ and hasattr(faiss, "GpuParameterSpace"):
        # GPU indexes are not reachable through the CPU helpers below.
        if nprobe is not None:
            faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", int(nprobe))
        return
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None and nprobe is not None:
        ivf.nprobe = int(max(1, min(nprobe, ivf.nlist)))
        quantizer = faiss.downcast_index(ivf.quantizer)
        if hasattr(quantizer, "hnsw"):
            # An HNSW coarse quantizer must look at more centres than the lists wanted.
            quantizer.hnsw.efSearch = int(max(64, 2 * ivf.nprobe))
    if efSearch is not None:
        inner = index
        if isinstance(inner, faiss.IndexPreTransform):
            inner = faiss.downcast_index(inner.index)
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = int(efSearch)


def build_index(
    descriptors: np.ndarray | str | Path,
    kind: str = "flat",
    metric: str = "l2",
    nlist: int | None = None,
    m: int | None = None,
    nprobe: int = 16,
    efSearch: int = 64,
    pca_dim: int | None = None,
    whiten: bool = False,
    use_gpu: bool = False,
    nbits: int = 8,
    efConstruction: int = 40,
    train_size: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    seed: int = 0,
    coarse: str = "flat",
) -> Any:
    """Builds a faiss index of ``descriptors``, streaming them in chunks.

    Exact search (``flat``) is the default; the others trade a little recall for speed
    (``ivf``, ``hnsw``) or for memory (``ivfpq`` stores ``m`` bytes per vector). A PCA,
    optionally whitened, can reduce the dimension first. A memory-mapped array or ``.npy``
    path is read ``chunk_rows`` rows at a time with its pages released after each, so
    indexing a file larger than memory needs memory for the index only.

    Args:
        descriptors: (N, D) float descriptors, an array, a memmap or a ``.npy`` path.
        kind: ``flat`` (exact), ``ivf`` (inverted lists), ``hnsw`` (graph) or ``ivfpq``
            (inverted lists of product-quantized codes).
        metric: ``l2`` (distances, smaller is nearer) or ``ip`` (inner products, larger is
            nearer); for L2-normalised descriptors both rank alike.
        nlist: inverted lists of ``ivf``/``ivfpq``; default about 4 sqrt(N).
        m: PQ sub-quantizers of ``ivfpq`` (must divide the dimension; default dim/8), or
            links per node of ``hnsw`` (default 32).
        nprobe: lists visited per query by ``ivf``/``ivfpq``.
        efSearch: candidate list size per query of ``hnsw``.
        pca_dim: reduce descriptors to this many dimensions by PCA first (None: no PCA).
        whiten: divide each PCA component by its standard deviation (with or without
            ``pca_dim``).
        use_gpu: build and search on GPU 0 (needs faiss-gpu and a GPU; else an error).
        nbits: bits per PQ code of ``ivfpq`` (lowered on tiny training sets).
        efConstruction: candidate list size while building ``hnsw``.
        train_size: rows sampled to train PCA / k-means / PQ (default: enough for them).
        chunk_rows: rows added per step.
        seed: seed of the training sample.
        coarse: how ``ivf``/``ivfpq`` find a vector's nearest lists: ``flat`` (exact) or
            ``hnsw`` (a graph of the list centres: adding 10M vectors to 16k lists then
            costs minutes, not hours, for the same lists found nearly always).

    Returns:
        A trained faiss index holding all N descriptors (``index.ntotal``, ``index.d``).

    Raises:
        ValueError: an unknown kind or metric, or parameters that do not fit the data.
        RuntimeError: ``use_gpu`` without a usable GPU.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}; valid: {', '.join(INDEX_KINDS)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    if coarse not in COARSE_QUANTIZERS:
        raise ValueError(f"unknown coarse quantizer {coarse!r}; valid: "
                         f"{', '.join(COARSE_QUANTIZERS)}")
    data = _open_descriptors(descriptors)
    rows, dim = data.shape
    if rows == 0:
        raise ValueError("cannot build an index of zero descriptors")
    use_pca = pca_dim is not None or whiten
    out_dim = int(pca_dim) if pca_dim is not None else dim
    if not 1 <= out_dim <= dim:
        raise ValueError(f"pca_dim must be between 1 and the dimension {dim}, got {pca_dim}")
    faiss_metric = METRICS[metric]
    needed = 1
    if kind == "flat":
        inner = faiss.IndexFlat(out_dim, faiss_metric)
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(out_dim, int(m or 32), faiss_metric)
        inner.hnsw.efConstruction = int(efConstruction)
    else:
        nlist = int(nlist or _default_nlist(rows))
        if nlist > rows:
            raise ValueError(f"nlist={nlist} exceeds the {rows} descriptors to cluster")
        needed = nlist * POINTS_PER_CENTROID
        quantizer = (faiss.IndexHNSWFlat(out_dim, HNSW_COARSE_M, faiss_metric)
                     if coarse == "hnsw" else faiss.IndexFlat(out_dim, faiss_metric))
        if kind == "ivf":
            inner = faiss.IndexIVFFlat(quantizer, out_dim, nlist, faiss_metric)
        else:
            m = int(m or _default_pq_m(out_dim))
            if out_dim % m:
                raise ValueError(f"m={m} PQ sub-quantizers must divide the dimension {out_dim}")
            sample_rows = min(rows, train_size or rows)
            # PQ trains 2**nbits centroids per sub-quantizer: tiny sets need fewer bits.
            nbits = int(min(nbits, max(1, math.floor(math.log2(max(2, sample_rows))))))
            needed = max(needed, (2**nbits) * POINTS_PER_CENTROID)
            inner = faiss.IndexIVFPQ(quantizer, out_dim, nlist, m, nbits, faiss_metric)
    index = inner
    if use_pca:
        # eigen_power -0.5 divides each component by sqrt(eigenvalue): whitening.
        pca = faiss.PCAMatrix(dim, out_dim, -0.5 if whiten else 0.0)
        index = faiss.IndexPreTransform(pca, inner)
        needed = max(needed, 4 * dim)
    if use_gpu:
        index = _to_gpu(index, kind)
    if not index.is_trained:
        size = int(train_size or min(rows, max(needed, 20000)))
        sample = _training_sample(data, min(size, rows), seed, chunk_rows)
        logger.debug("Training %s index on %d of %d descriptors", kind, len(sample), rows)
        index.train(sample)
        del sample
    for chunk in _chunks(data, chunk_rows):
        index.add(chunk)
    set_search_params(index, nprobe=nprobe, efSearch=efSearch)
    return index


def add_to_index(index: Any, descriptors: np.ndarray | str | Path,
                 chunk_rows: int = CHUNK_ROWS) -> None:
    """Adds descriptors to a trained index, in chunks; they get the next ids in order."""
    data = _open_descriptors(descriptors)
    if data.shape[1] != index.d:
        raise ValueError(f"descriptors have dimension {data.shape[1]}, the index {index.d}")
    for chunk in _chunks(data, chunk_rows):
        index.add(chunk)


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
    _advise_random(database_descriptors)
    vectors = np.empty((len(unique), database_descriptors.shape[1]), np.float32)
    # A few thousand rows at a time, pages released after each: the kernel maps pages
    # around each row read (fault-around), so scattered rows of a large memmap would
    # otherwise make most of the file resident in this process.
    for start in range(0, len(unique), RERANK_ROWS):
        vectors[start : start + RERANK_ROWS] = database_descriptors[
            unique[start : start + RERANK_ROWS]]
        _release_pages(database_descriptors)
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
        self.metric_type = faiss.METRIC_L2

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


def search_index(
    index: Any,
    query_descriptors: np.ndarray,
    k: int,
    batch_size: int = 1024,
    rerank_with: np.ndarray | None = None,
    rerank_factor: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Searches an index built by `build_index` (or loaded by `load_index`).

    Args:
        index: the faiss index.
        query_descriptors: (Q, D) query descriptors.
        k: neighbours wanted per query; clipped to the index size.
        batch_size: queries searched per call (bounds the result and re-rank buffers).
        rerank_with: the (N, D) exact descriptors of the index (array or memmap): when
            given, ``k * rerank_factor`` candidates are retrieved and re-ranked exactly
            (see `rerank`); worth it for ``ivfpq`` and PCA indexes.
        rerank_factor: candidates per wanted neighbour when re-ranking.

    Returns:
        ``(scores, indices)``: (Q, k) float32 squared L2 distances (nearest first), or inner
        products (largest first) for an ``ip`` index, and (Q, k) int64 database indices.
        An approximate index may find fewer than k neighbours: missing ones are -1.
    """
    queries = np.ascontiguousarray(query_descriptors, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != index.d:
        raise ValueError(f"queries must be (Q, {index.d}), got shape {queries.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, int(index.ntotal))
    scores = np.zeros((len(queries), k), np.float32)
    indices = np.full((len(queries), k), -1, np.int64)
    if k == 0:
        return scores, indices
    wanted = k if rerank_with is None else min(k * rerank_factor, int(index.ntotal))
    for start in range(0, len(queries), batch_size):
        block = queries[start : start + batch_size]
        block_scores, block_indices = index.search(block, wanted)
        if rerank_with is not None:
            block_scores, block_indices = rerank(rerank_with, block, block_indices, k,
                                                 index_metric(index))
        scores[start : start + batch_size] = block_scores
        indices[start : start + batch_size] = block_indices
    return scores, indices


def index_metric(index: Any) -> str:
    """``"l2"`` or ``"ip"``: how the index's scores read."""
    return "ip" if index.metric_type == faiss.METRIC_INNER_PRODUCT else "l2"


def save_index(index: Any, path: str | Path) -> None:
    """Writes an index to a file (a GPU index is copied to the CPU first)."""
    if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:
        index = faiss.index_gpu_to_cpu(index)
    faiss.write_index(index, str(path))


def load_index(path: str | Path, nprobe: int | None = None,
               efSearch: int | None = None, mmap: bool = False) -> Any:
    """Reads an index written by `save_index`, optionally changing its search parameters.

    ``mmap=True`` maps the inverted lists of ivf/ivfpq indexes from the file instead of
    reading them (faiss's IO_FLAG_MMAP): a large index opens at once and its lists stay in
    the page cache, outside the process's own memory, until searched.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: index file not found")
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
    set_search_params(index, nprobe=nprobe, efSearch=efSearch)
    return index
