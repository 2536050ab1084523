"""Nearest-neighbour search of query descriptors in a database: the only module importing faiss.

`search` is the exact search that evaluation uses. `build_index` makes the indexes that
scale past memory or past exact search's speed (IVF, HNSW, IVF-PQ, optionally after a PCA),
from an array or a memory-mapped ``.npy`` file, streamed in chunks; `search_index`,
`save_index` and `load_index` use them, so no other module needs faiss. Reading a large
file without making it resident is `vpr.eval.memmap`'s; exact search of stored rows
(`ExactIndex`, `search_rows`) and the exact re-ranking of candidates (`rerank`) are
`vpr.eval.exact`'s, re-exported here.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from vpr.eval.exact import RERANK_ROWS, SEARCH_CHUNK_ROWS, ExactIndex, rerank, search_rows
from vpr.eval.memmap import CHUNK_ROWS, chunks, open_descriptors, training_sample

# ExactIndex, search_rows and rerank moved to vpr.eval.exact; importable from here as before.
__all__ = [
    "CHUNK_ROWS", "COARSE_QUANTIZERS", "INDEX_KINDS", "METRICS", "RERANK_ROWS",
    "SEARCH_CHUNK_ROWS", "ExactIndex", "add_to_index", "build_index", "gpu_available",
    "index_metric", "load_index", "rerank", "save_index", "search", "search_index",
    "search_rows", "set_search_params",
]

logger = logging.getLogger(__name__)

INDEX_KINDS = ("flat", "ivf", "hnsw", "ivfpq")
METRICS = {"l2": faiss.METRIC_L2, "ip": faiss.METRIC_INNER_PRODUCT}
# How IVF indexes assign vectors and queries to lists: exact, or an HNSW graph of centres.
COARSE_QUANTIZERS = ("flat", "hnsw")
HNSW_COARSE_M = 32
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


def _default_nlist(rows: int) -> int:
    # The usual rule of thumb (about 4 sqrt(N) lists), kept small enough for k-means to
    # have ~40 points per centroid on small databases.
    return int(max(1, min(round(4 * math.sqrt(rows)), rows // POINTS_PER_CENTROID)))


def _default_pq_m(dim: int) -> int:
    # About one byte per 8 dimensions (32 bytes for 256-D): the largest divisor of dim
    # not above dim / 8, since PQ needs m to divide the dimension.
    target = max(1, dim // 8)
    return max(divisor for divisor in range(1, target + 1) if dim % divisor == 0)


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
    data = open_descriptors(descriptors)
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
        sample = training_sample(data, min(size, rows), seed, chunk_rows)
        logger.debug("Training %s index on %d of %d descriptors", kind, len(sample), rows)
        index.train(sample)
        del sample
    for chunk in chunks(data, chunk_rows):
        index.add(chunk)
    set_search_params(index, nprobe=nprobe, efSearch=efSearch)
    return index


def add_to_index(index: Any, descriptors: np.ndarray | str | Path,
                 chunk_rows: int = CHUNK_ROWS) -> None:
    """Adds descriptors to a trained index, in chunks; they get the next ids in order."""
    data = open_descriptors(descriptors)
    if data.shape[1] != index.d:
        raise ValueError(f"descriptors have dimension {data.shape[1]}, the index {index.d}")
    for chunk in chunks(data, chunk_rows):
        index.add(chunk)


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
