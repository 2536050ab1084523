"""Local features of a database, computed once and kept in one ``.npz`` file.

The file is named after the method and a hash of its identity (method, options, model
weights, and how images are read: `PIXELS`), so features of another method or model are
never mixed in: changing either reads (or makes) another file, and the stale files of that
method in the folder are removed.
Images added since the file was written are computed and appended; nothing else is redone.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vpr.rerank.features import LocalFeatureMethod, LocalFeatures
from vpr.utils.atomic import write_bytes_atomic

logger = logging.getLogger("vpr")

# How database images become pixels, part of every cache key: features computed before the
# readers applied EXIF orientation (keypoints in a sideways photo's stored frame) are stale.
PIXELS = "exif-oriented"


def cache_identity(method: LocalFeatureMethod) -> dict:
    """What the cached features depend on: the method's identity and `PIXELS`."""
    return {**method.identity(), "pixels": PIXELS}


def cache_file(folder: str | Path, method: LocalFeatureMethod) -> Path:
    """Where ``method``'s features live in ``folder``: ``<name>-<identity hash>.npz``."""
    identity = json.dumps(cache_identity(method), sort_keys=True)
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return Path(folder) / f"{method.name}-{key}.npz"


def cached_features(folder: str | Path, method: LocalFeatureMethod,
                    paths: Sequence[str | Path]) -> list[LocalFeatures]:
    """The features of ``paths`` (in order): read from the cache, the missing ones computed.

    Args:
        folder: the cache folder (created if needed).
        method: the local-feature method.
        paths: the database images; their path strings are the cache's keys.
    """
    path = cache_file(folder, method)
    names = [str(item) for item in paths]
    stored = _read(path, method)
    missing = [name for name in dict.fromkeys(names) if name not in stored]
    if missing:
        logger.info("Local features (%s) of %d images -> %s", method.name, len(missing), path)
        # Rounded as stored, so a first run and a cached run see identical descriptors.
        stored.update(zip(missing, map(_as_stored, method.extract(missing))))
        _write(path, method, stored)
        for stale in path.parent.glob(f"{method.name}-*.npz"):
            if stale != path:
                stale.unlink(missing_ok=True)
    return [stored[name] for name in names]


def _read(path: Path, method: LocalFeatureMethod) -> dict[str, LocalFeatures]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(str(data["identity"])) != json.loads(
                    json.dumps(cache_identity(method), sort_keys=True)):
                return {}
            offsets = data["offsets"]
            keypoints, descriptors = data["keypoints"], data["descriptors"]
            return {
                str(name): LocalFeatures(
                    keypoints[offsets[i]:offsets[i + 1]].astype(np.float32),
                    _restore(descriptors[offsets[i]:offsets[i + 1]]), float(cell))
                for i, (name, cell) in enumerate(zip(data["paths"], data["cell_px"]))
            }
    except (OSError, ValueError, KeyError) as error:
        logger.warning("Ignoring unreadable local-feature cache %s: %s", path, error)
        return {}


def _write(path: Path, method: LocalFeatureMethod, stored: dict[str, LocalFeatures]) -> None:
    features = list(stored.values())
    dims = {item.descriptors.shape[1] for item in features if len(item)}
    dim = dims.pop() if dims else 0
    kinds = {item.descriptors.dtype for item in features if len(item)}
    dtype = np.uint8 if kinds == {np.dtype(np.uint8)} else np.float16
    offsets = np.cumsum([0] + [len(item) for item in features])
    buffer = io.BytesIO()
    np.savez(
        buffer,
        identity=np.array(json.dumps(cache_identity(method), sort_keys=True)),
        paths=np.array(list(stored), dtype=str),
        offsets=offsets.astype(np.int64),
        cell_px=np.array([item.cell_px for item in features], np.float32),
        keypoints=np.concatenate([item.keypoints for item in features] + [np.zeros((0, 2))])
        .astype(np.float32),
        # float16 halves the file; descriptor similarities change by ~1e-3.
        descriptors=np.concatenate([item.descriptors.reshape(-1, dim) for item in features]
                                   + [np.zeros((0, dim))]).astype(dtype),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buffer.getvalue())


def _as_stored(features: LocalFeatures) -> LocalFeatures:
    if features.descriptors.dtype == np.uint8:
        return features
    return LocalFeatures(features.keypoints.astype(np.float32),
                         _restore(features.descriptors.astype(np.float16)), features.cell_px)


def _restore(descriptors: np.ndarray) -> np.ndarray:
    return descriptors if descriptors.dtype == np.uint8 else descriptors.astype(np.float32)
