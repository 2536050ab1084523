"""Reading large (memory-mapped) descriptor files without making them resident.

Index building streams a file chunk by chunk, exact re-ranking reads scattered rows; both
release the pages they read so that the process's RSS stays flat while a file larger than
memory goes by. Nothing here imports faiss.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# Rows added to an index per call: bounds the float32 copy made of a memory-mapped file.
CHUNK_ROWS = 65536


def open_descriptors(descriptors: np.ndarray | str | Path) -> np.ndarray:
    """The (N, D) descriptors, a ``.npy`` path being memory-mapped rather than read."""
    if isinstance(descriptors, (str, Path)):
        descriptors = np.load(descriptors, mmap_mode="r")
    if descriptors.ndim != 2:
        raise ValueError(f"descriptors must be (N, D), got shape {descriptors.shape}")
    return descriptors


def release_pages(array: np.ndarray) -> None:
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


def advise_random(array: np.ndarray) -> None:
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


def chunks(descriptors: np.ndarray, chunk_rows: int) -> Iterator[np.ndarray]:
    """Yields C-contiguous float32 copies of ``chunk_rows`` rows at a time."""
    for start in range(0, descriptors.shape[0], chunk_rows):
        yield np.ascontiguousarray(descriptors[start : start + chunk_rows], dtype=np.float32)
        release_pages(descriptors)


def training_sample(descriptors: np.ndarray, size: int, seed: int,
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
        release_pages(descriptors)
    return sample
