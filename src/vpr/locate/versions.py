"""An index folder's versions on disk: ``version.json``, crash recovery, format 1.

An index is a folder; a version folder named by ``CURRENT`` says how many rows of its
append-only store exist::

    INDEX/
      CURRENT           the name of the current version, e.g. ``v-2``
      v-2/
        version.json      format, the store's name, the row count, when updated, sources
        index.faiss       the faiss index, for ivf, hnsw, ivfpq and PCA indexes only (a
                          flat index is searched exactly over the descriptors)
      store-1/          `vpr.locate.store`: images.sqlite (paths, coordinates, model
                        identity, index type) and descriptors.f32 (memory-mapped)
      .lock             taken by the one process that writes the index

Writes are atomic and exclusive: a writer holds ``.lock`` (a second one waits, up to
``lock_timeout`` seconds), writes a new version, and switches ``CURRENT`` to it in one
rename; see `vpr.locate.storage` for the steps and how a crash's leftovers are recovered.
Rows a crashed writer appended but never published, and stores no version uses, are
removed by the next writer (`_recover_locked`). Indexes of format 1 (``descriptors.npy``,
``index.faiss`` and ``meta.json``, read whole) are migrated to this layout
(`_migrate_locked`) the first time they are opened.
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from vpr.eval.search import load_index
from vpr.locate import storage
from vpr.locate.store import ImageStore
from vpr.utils.locking import FileLock, LockTimeoutError

logger = logging.getLogger(__name__)

FORMAT = "vpr-location-index"
FORMAT_VERSION = 2
VERSION_FILE = "version.json"
STORE_PREFIX = "store-"
FAISS_FILE = "index.faiss"
# The files of format 1, read (and migrated) when found.
DESCRIPTORS_FILE = "descriptors.npy"
META_FILE = "meta.json"
# Rows copied at a time when an index grows: bounds memory whatever the index size.
COPY_ROWS = 65536
# Seconds a writer waits for another one to finish with the same index.
DEFAULT_LOCK_TIMEOUT = 600.0


class LocationIndexError(ValueError):
    """An index folder that cannot be used as asked (missing, clashing, other model)."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _writer_lock(index: Path, timeout: float | None) -> FileLock:
    return FileLock(index / storage.LOCK_FILE, timeout=timeout, what=f"index {index}")


def _read_version(data: Path) -> dict[str, Any] | None:
    """The ``version.json`` of a version folder, or None for a format-1 folder."""
    try:
        return json.loads((data / VERSION_FILE).read_text())
    except FileNotFoundError:
        if (data / META_FILE).is_file():
            return None
        raise


def _stray_stores(index: Path) -> list[Path]:
    """Store folders that the current version does not use (a build or migration that
    was interrupted, or the store an overwrite replaced)."""
    if not index.is_dir():
        return []
    try:
        data = storage.current_version(index)
        version = _read_version(data) if data is not None else None
    except (ValueError, OSError):
        return []
    used = version["store"] if version else None
    return sorted(entry for entry in index.iterdir()
                  if entry.name.startswith(STORE_PREFIX) and entry.is_dir()
                  and entry.name != used)


def _recover_locked(index: Path) -> None:
    """Removes every crash leftover: storage's, stray stores, unpublished rows (hold the lock)."""
    storage.recover(index)
    for stray in _stray_stores(index):
        logger.warning("%s: removing %s: a store no version uses (a write was interrupted, "
                       "or it was replaced)", index, stray.name)
        shutil.rmtree(stray, ignore_errors=True)
    data = storage.current_version(index)
    version = _read_version(data) if data is not None else None
    if version is None:
        return
    store = ImageStore(index / version["store"], version["rows"], version["dim"])
    try:
        if store.has_tail():
            removed = store.recover_tail()
            logger.warning("%s: removing %d rows a write appended but never published (it "
                           "was interrupted)", index, removed)
    finally:
        store.close()


def _recover_if_free(index: Path) -> None:
    """Cleans a crash's leftovers when no writer is busy (readers never wait for one)."""
    storage.restore_legacy_rename(index)
    if not storage.leftovers(index) and not _stray_stores(index):
        return
    lock = _writer_lock(index, timeout=0)
    try:
        lock.acquire()
    except (LockTimeoutError, OSError):  # a writer is at work, or the folder is read-only
        return
    try:
        storage.recover(index)
        for stray in _stray_stores(index):
            logger.warning("%s: removing %s: a store no version uses (a write was "
                           "interrupted, or it was replaced)", index, stray.name)
            shutil.rmtree(stray, ignore_errors=True)
    except OSError:
        pass
    finally:
        lock.release()


def _needs_faiss(index_type: str, options: dict[str, Any]) -> bool:
    """Whether an index keeps a faiss file: all but a plain flat one (searched exactly over
    the descriptors, so that adding images appends and rewrites nothing)."""
    return index_type != "flat" or options.get("pca_dim") is not None \
        or bool(options.get("whiten", False))


def _write_version(folder: Path, store_name: str, rows: int, dim: int, updated: str,
                   sources: list[str]) -> None:
    version = {"format": FORMAT, "format_version": FORMAT_VERSION, "store": store_name,
               "rows": int(rows), "dim": int(dim), "updated": updated, "sources": sources}
    (folder / VERSION_FILE).write_text(json.dumps(version, indent=1) + "\n")


def _check_format(path: Path, found: dict[str, Any], what: str) -> None:
    if found.get("format") != FORMAT or found.get("format_version", 0) > FORMAT_VERSION:
        raise LocationIndexError(
            f"{path}: {what} is not a location index of format {FORMAT} version "
            f"<= {FORMAT_VERSION} (found {found.get('format')} {found.get('format_version')})"
        )


def _store_name(temporary: Path) -> str:
    """The store folder made with version ``.v-N.tmp``: ``store-N`` (never reused)."""
    return STORE_PREFIX + temporary.name.removeprefix(".v-").removesuffix(".tmp")


def _copy_rows(source: np.ndarray, target: ImageStore, records: dict[str, list[Any]]) -> None:
    """Appends ``source``'s rows (and their records) to a store, a chunk of rows at a time."""
    rows = source.shape[0]
    for start in range(0, rows, COPY_ROWS):
        end = min(start + COPY_ROWS, rows)
        target.append({key: values[start:end] for key, values in records.items()},
                      np.asarray(source[start:end], dtype=np.float32))


def _migrate_locked(path: Path, data: Path) -> None:
    """Rewrites a format-1 version (meta.json, descriptors.npy) as a store + version."""
    meta = json.loads((data / META_FILE).read_text())
    _check_format(path, meta, META_FILE)
    descriptors = np.load(data / DESCRIPTORS_FILE, mmap_mode="r")
    images = meta["images"]
    rows = len(images["paths"])
    logger.warning("%s: migrating the index of %d images from %s to the SQLite store "
                   "(once; later loads read nothing whole)", path, rows, META_FILE)
    temporary = storage.new_version_folder(path)
    store_name = _store_name(temporary)
    try:
        store = ImageStore.create(path / store_name, descriptors.shape[1], {
            "vpr_version": meta.get("vpr_version"), "created": meta.get("created"),
            "model": meta["model"], "index": meta["index"]})
        _copy_rows(descriptors, store, images)
        store.close()
        if _needs_faiss(meta["index"]["type"], meta["index"].get("options", {})):
            shutil.copyfile(data / FAISS_FILE, temporary / FAISS_FILE)
        _write_version(temporary, store_name, rows, descriptors.shape[1],
                       meta.get("updated") or _now(), list(meta.get("sources", [])))
        del descriptors
        storage.publish(path, temporary)
    except BaseException:
        shutil.rmtree(path / store_name, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _read_format_1(path: Path, data: Path, nprobe: int | None, efSearch: int | None
                   ) -> tuple[dict[str, Any], ImageStore, Any]:
    """A format-1 version as it is (meta.json read whole): ``(meta, store, faiss index)``."""
    meta = json.loads((data / META_FILE).read_text())
    _check_format(path, meta, META_FILE)
    descriptors = np.load(data / DESCRIPTORS_FILE, mmap_mode="r")
    images = meta.pop("images")
    store = ImageStore.in_memory(images, descriptors, {})
    index = load_index(data / FAISS_FILE, nprobe=nprobe, efSearch=efSearch)
    if descriptors.shape[0] != store.rows or index.ntotal != store.rows:
        raise LocationIndexError(
            f"{path}: inconsistent index: {store.rows} images, {descriptors.shape[0]} "
            f"descriptors, {index.ntotal} indexed vectors")
    return meta, store, index
