"""Deterministic random streams and integer hashes shared by the generator's modules."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """A random generator fixed by ``seed`` and a path of keys (stable across processes).

    Python's ``hash`` of a string changes between processes, so keys are hashed with CRC32.
    """
    entropy = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(key).encode()) for key in keys]
    return np.random.default_rng(entropy)


_PRIMES = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1, 0xD3A2646C, 0xFD7046C5)


def hash_ints(*values: np.ndarray | int) -> np.ndarray:
    """A uint32 hash of integer arrays (broadcast together), for per-window randomness."""
    result = np.zeros((), dtype=np.uint32)
    with np.errstate(over="ignore"):  # uint32 wrap-around is the point of the mixing
        for index, value in enumerate(values):
            part = np.asarray(value).astype(np.int64).astype(np.uint32)
            result = result + part * np.uint32(_PRIMES[index % len(_PRIMES)])
            result = result ^ (result >> np.uint32(15))
        # Finaliser of MurmurHash3: every input bit affects every output bit.
        result = result * np.uint32(0x85EBCA6B)
        result = result ^ (result >> np.uint32(13))
        result = result * np.uint32(0xC2B2AE35)
        result = result ^ (result >> np.uint32(16))
    return result


def hash_unit(*values: np.ndarray | int) -> np.ndarray:
    """Like :func:`hash_ints` but mapped to floats in [0, 1)."""
    return hash_ints(*values).astype(np.float32) * np.float32(1.0 / 4294967296.0)


_CORNER_X = np.array([0, 1, 0, 1])
_CORNER_Y = np.array([0, 0, 1, 1])


def value_noise(x: np.ndarray, y: np.ndarray, salt: int) -> np.ndarray:
    """Smooth 2D value noise in [0, 1) on the unit lattice (bilinear, smoothstep weights)."""
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = x - x0
    fy = y - y0
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    # One hash call for the four lattice corners (a trailing axis of 4).
    corners = hash_unit(x0.astype(np.int64)[..., None] + _CORNER_X,
                        y0.astype(np.int64)[..., None] + _CORNER_Y, salt)
    v00, v10, v01, v11 = corners[..., 0], corners[..., 1], corners[..., 2], corners[..., 3]
    top = v00 + (v10 - v00) * fx
    bottom = v01 + (v11 - v01) * fx
    return top + (bottom - top) * fy
