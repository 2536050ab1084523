"""A location index: the descriptors of geotagged images, saved once, searched for each photo.

An index is a folder (`vpr.locate.versions`: its versions on disk, crash recovery, format 1);
a version folder named by ``CURRENT`` says how many rows of its append-only store
(`vpr.locate.store`) exist. Opening an index reads ``version.json`` and opens the SQLite
file: no cost grows with the number of images; rows are read by id when a search returns
them. ``index add`` appends the new descriptors and rows to the store in one transaction and
publishes a new version counting them; nothing else is rewritten (but the faiss file of an
approximate index).

The model is not copied: the store records its identity, and the model is reloaded and
checked against it to describe new photos (`vpr.locate.model_source`).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vpr.eval.exact import ExactIndex, search_rows
from vpr.eval.search import INDEX_KINDS, load_index, search_index
from vpr.locate import storage
from vpr.locate.model_source import (
    _extract,
    _reader,
    index_model,
    load_any_model,
    load_model,
    load_published_model,
    resolve_device,
    sha256_of,
)
from vpr.locate.records import image_records
from vpr.locate.store import Column, ImageStore
from vpr.locate.versions import (
    DEFAULT_LOCK_TIMEOUT,
    FAISS_FILE,
    FORMAT,
    VERSION_FILE,
    LocationIndexError,
    _check_format,
    _migrate_locked,
    _read_format_1,
    _read_version,
    _recover_if_free,
    _recover_locked,
    _writer_lock,
)
from vpr.locate.writes import _add_locked, _build_locked, _create_locked
from vpr.utils.locking import LockTimeoutError

logger = logging.getLogger(__name__)

# The names other modules import from here (some are defined in the modules beside it).
__all__ = ["DEFAULT_LOCK_TIMEOUT", "LocationIndex", "LocationIndexError", "image_records",
           "load_any_model", "load_model", "load_published_model", "resolve_device",
           "sha256_of"]


class LocationIndex:
    """Descriptors of geotagged images with their coordinates, ready to locate photos.

    Build one with `LocationIndex.build`, open one with `LocationIndex.load`, grow one with
    `add`. Item ``i`` of the index is image ``paths[i]`` at ``utm[i]``; rows are read from
    the store when asked (`record`, `paths[i]`), never all at load.
    """

    def __init__(self, path: Path, meta: dict[str, Any], store: ImageStore, index: Any,
                 data_path: Path | None = None) -> None:
        self.path = Path(path)
        # The version folder these data were read from.
        self.data_path = Path(data_path) if data_path is not None else self.path
        self.meta = meta
        self.store = store
        self.index = index

    # ---- opening and creating

    @classmethod
    def load(cls, path: str | Path, nprobe: int | None = None,
             efSearch: int | None = None) -> LocationIndex:
        """Opens an index folder (descriptors memory-mapped and rows read by id: no cost
        grows with the number of images). A format-1 index is migrated first.

        Args:
            path: the folder written by `build`.
            nprobe: lists visited per query, for ivf/ivfpq indexes (default: as built).
            efSearch: candidates per query, for hnsw indexes (default: as built).
        """
        path = Path(path)
        _recover_if_free(path)
        # A writer may delete the version read from CURRENT before its files are open:
        # then CURRENT names a newer one, and reading again finds it.
        for attempt in range(5):
            try:
                data = storage.current_version(path)
            except ValueError as error:
                raise LocationIndexError(str(error)) from None
            try:
                return cls._load_version(path, data, nprobe, efSearch)
            except FileNotFoundError:
                if attempt == 4 or data is None or storage.current_version(path) == data:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load_version(cls, path: Path, data: Path | None, nprobe: int | None,
                      efSearch: int | None) -> LocationIndex:
        if data is None:
            raise LocationIndexError(
                f"{path}: not a location index (no {storage.POINTER_FILE}); make one with "
                "`vpr index build --ckpt_path CKPT --database DIR --out INDEX`"
            )
        version = _read_version(data)
        if version is None:
            return cls._open_format_1(path, data, nprobe, efSearch)
        _check_format(path, version, VERSION_FILE)
        store = ImageStore(path / version["store"], version["rows"], version["dim"])
        info = store.info
        meta = {"format": FORMAT, "format_version": version["format_version"],
                "vpr_version": info.get("vpr_version"), "created": info.get("created"),
                "updated": version["updated"], "model": info["model"], "index": info["index"],
                "sources": version.get("sources", [])}
        if (data / FAISS_FILE).is_file():
            index = load_index(data / FAISS_FILE, nprobe=nprobe, efSearch=efSearch)
        else:
            index = ExactIndex(store.descriptors)
        if index.ntotal != store.rows:
            raise LocationIndexError(f"{path}: inconsistent index: {store.rows} images, "
                                     f"{index.ntotal} indexed vectors")
        return cls(path, meta, store, index, data_path=data)

    @classmethod
    def _open_format_1(cls, path: Path, data: Path, nprobe: int | None,
                       efSearch: int | None) -> LocationIndex:
        """Migrates an index of format 1 (meta.json read whole) and opens it; where it
        cannot be migrated now (read-only, or a writer is busy), opens it as it is."""
        try:
            with _writer_lock(path, timeout=0):
                if storage.current_version(path) == data:
                    _migrate_locked(path, data)
                return cls.load(path, nprobe=nprobe, efSearch=efSearch)
        except (LockTimeoutError, OSError) as error:  # busy, or a read-only folder
            if isinstance(error, FileNotFoundError):
                raise
            logger.warning("%s: an index of format 1, opened as it is (not migrated: %s)",
                           path, error)
        meta, store, index = _read_format_1(path, data, nprobe, efSearch)
        return cls(path, meta, store, index, data_path=data)

    @classmethod
    def build(
        cls,
        out: str | Path,
        ckpt_path: str | Path | None,
        database: str | Path | Sequence[str | Path],
        index_type: str = "flat",
        batch_size: int = 32,
        num_workers: int = 0,
        device: str = "auto",
        precision: str | None = "auto",
        overwrite: bool = False,
        progress: bool = False,
        index_options: dict[str, Any] | None = None,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        describe: Any = None,
        *,
        model: str | None = None,
        weights: str | Path | None = None,
        image_size: tuple[int, int] | None = None,
        runtime: Any = None,
    ) -> LocationIndex:
        """Describes every database image once and saves the index folder ``out``.

        Args:
            out: the index folder to create.
            ckpt_path: a checkpoint of `vpr train`, or None with ``model``.
            database: a folder of @-named images (searched recursively) or a list of them.
            index_type: flat (exact), ivf, hnsw or ivfpq; see `vpr.eval.search.build_index`.
            batch_size: images per forward pass.
            num_workers: DataLoader worker processes.
            device: ``cpu``, ``cuda``... or ``auto``.
            precision: ``auto`` (bf16 where the hardware computes it natively), None
                (float32), ``16-mixed`` or ``bf16-mixed``.
            overwrite: replace an existing ``out`` (otherwise an error).
            progress: show a progress bar.
            index_options: more `build_index` options (nlist, m, nprobe, pca_dim, ...).
            lock_timeout: seconds to wait while another process writes ``out`` (None:
                forever).
            describe: how to compute the descriptors, ``describe(module, paths, meta,
                out_path) -> (N, D) array`` (default: one process on ``device``); e.g.
                several processes, `vpr.locate.distributed`.
            model: a published model ``NAME[:VARIANT]`` instead of a checkpoint.
            weights: its weights (a file or ``hf:ORG/REPO[/FILE]``; default: its registered
                source).
            image_size: the published model's input size, overriding its own.
            runtime: a `vpr.export.runtime.RuntimeChoice` (torch or an exported ONNX model);
                None: torch. The index records it, so later photos are described alike.

        Raises:
            LocationIndexError: ``out`` exists and ``overwrite`` is False, or is a folder
                that is not an index, or not exactly one of ``ckpt_path`` and ``model``.
            LockTimeoutError: another process kept writing ``out`` for ``lock_timeout`` s.
        """
        out = Path(out)
        if index_type not in INDEX_KINDS:
            raise LocationIndexError(
                f"unknown index type {index_type!r}; valid: {', '.join(INDEX_KINDS)}"
            )
        # Fail before the long extraction, not after it.
        if storage.is_index(out) and not overwrite:
            raise LocationIndexError(f"{out} already exists; set overwrite to replace it")
        if (ckpt_path is None) == (model is None):
            raise LocationIndexError("give a checkpoint (ckpt_path) or a published model "
                                     "(model), not both")
        published = None if model is None else {"model": model, "weights": weights,
                                                 "image_size": image_size}
        storage.restore_legacy_rename(out)
        if out.exists() and not out.is_dir():
            raise LocationIndexError(f"{out} is a file, not an index folder")
        if out.is_dir() and not storage.is_index(out) and any(
                entry.name != storage.LOCK_FILE for entry in out.iterdir()):
            raise LocationIndexError(f"{out} is a folder that is not a location index; "
                                     "choose a new or empty folder")
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        if describe is None:
            def describe(module, paths, meta, out_path):
                return _extract(module, paths, meta, out_path, batch_size, num_workers,
                                resolve_device(device), precision, progress)
        try:
            with _writer_lock(out, lock_timeout):
                _recover_locked(out)
                # Checked again: another writer may have built it while this one waited.
                if storage.is_index(out) and not overwrite:
                    raise LocationIndexError(
                        f"{out} already exists; set overwrite to replace it")
                _build_locked(out, Path(ckpt_path) if ckpt_path else None, database,
                              index_type, describe, index_options, published,
                              runtime=runtime, device=resolve_device(device))
        except BaseException:
            if created and not storage.is_index(out):
                shutil.rmtree(out, ignore_errors=True)
            raise
        return cls.load(out)

    @classmethod
    def create(cls, out: str | Path, model: dict[str, Any], dim: int,
               lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> LocationIndex:
        """An empty flat index of a model's descriptors, to fill with `add_rows`.

        For rows made elsewhere (benchmarks, tests, descriptors computed by another
        program): ``model`` is the identity `build` records (checkpoint, sha256, hparams,
        image_size, descriptors_dim).

        Raises:
            LocationIndexError: ``out`` already holds something.
        """
        out = Path(out)
        if out.exists() and any(entry.name != storage.LOCK_FILE for entry in out.iterdir()):
            raise LocationIndexError(f"{out} already exists; choose a new folder")
        out.mkdir(parents=True, exist_ok=True)
        with _writer_lock(out, lock_timeout):
            _create_locked(out, model, dim)
        return cls.load(out)

    def add(
        self,
        images: str | Path | Sequence[str | Path],
        ckpt_path: str | Path | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        device: str = "auto",
        precision: str | None = "auto",
        progress: bool = False,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        runtime: Any = None,
    ) -> int:
        """Adds images to the index on disk (and to this object); existing ones are kept.

        Only the new images are described; images already in the index (same path) are
        skipped. The index is locked, re-read (another process may have grown it since
        this object was loaded), the new rows appended to its store and a new version
        counting them published; the existing rows are not rewritten.

        Args:
            images: a folder of @-named images, one image, or a list of them.
            ckpt_path: the checkpoint to describe them with; it must be the one the index
                was built with (same sha256). Default: the path recorded in the index.
            batch_size, num_workers, device, precision, progress, lock_timeout: as in
                `build`.
            runtime: a `vpr.export.runtime.RuntimeChoice`; must agree with the index's.

        Returns:
            The number of images added.

        Raises:
            LocationIndexError: the checkpoint differs from the index's model.
            LockTimeoutError: another process kept writing the index for ``lock_timeout`` s.
        """
        def describe(module, paths, meta, out_path):
            return _extract(module, paths, meta, out_path, batch_size, num_workers,
                            resolve_device(device), precision, progress)

        def image_rows(paths: list[Path]) -> tuple[dict[str, list[Any]], np.ndarray]:
            module = self.load_model(ckpt_path, runtime=runtime)
            return image_records(paths), describe(module, paths, self.meta, None)

        return self.add_rows(images, image_rows, lock_timeout)

    def add_rows(self, images: str | Path | Sequence[str | Path], make_rows: Any,
                 lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> int:
        """Adds the images that the index lacks, their rows made by ``make_rows(paths) ->
        (records, descriptors)`` (what `add` does with the model; benchmarks and tests
        give made-up rows)."""
        with _writer_lock(self.path, lock_timeout):
            _recover_locked(self.path)
            data = storage.current_version(self.path)
            if data is not None and _read_version(data) is None:
                _migrate_locked(self.path, data)
            self._become(LocationIndex.load(self.path))
            added = _add_locked(self.path, self.data_path, self.store,
                                self.meta.get("sources", []), images, make_rows)
        if added:
            self._become(LocationIndex.load(self.path))
            logger.info("Added %d images to %s (%d in all)", added, self.path, len(self))
        return added

    def _become(self, other: LocationIndex) -> None:
        self.meta, self.store, self.index, self.data_path = (
            other.meta, other.store, other.index, other.data_path)

    # ---- the model

    def load_model(self, ckpt_path: str | Path | None = None, runtime: Any = None):
        """The model that made this index's descriptors, checked by sha256.

        Args:
            ckpt_path: where the model's file is now, if it moved: the checkpoint, or the
                weights file of a published model (default: the path recorded at build).
            runtime: a `vpr.export.runtime.RuntimeChoice`; an index built with an exported
                ONNX model gets that model (checked by sha256), not the checkpoint.

        Raises:
            LocationIndexError: the file is not the one the index was built with.
            ExportError: a runtime or exported model other than the index's.
        """
        return index_model(self.path, self.meta["model"], ckpt_path, runtime)

    # ---- contents

    def __len__(self) -> int:
        return self.store.rows

    def __repr__(self) -> str:
        return (f"LocationIndex({self.path}: {len(self)} images, "
                f"{self.meta['index']['type']}, dim {self.store.dim})")

    @property
    def descriptors(self) -> np.ndarray:
        """(N, D) float32 descriptors, memory-mapped."""
        return self.store.descriptors

    @property
    def paths(self) -> Sequence[str]:
        """The image path of each item (read from the store on access)."""
        return self.store_column("path")

    def store_column(self, name: str) -> Sequence[Any]:
        """One column of the store (`vpr.locate.store.COLUMNS`), read on access."""
        return Column(self.store, name)

    @property
    def utm(self) -> np.ndarray:
        """(N, 2) UTM east/north of each item, in metres (reads every row)."""
        return np.column_stack([list(self.store.column_values("utm_east")),
                                list(self.store.column_values("utm_north"))]
                               ).astype(np.float64).reshape(-1, 2)

    @property
    def metric(self) -> str:
        """How the faiss index scores: ``l2`` (squared distance) or ``ip``."""
        return self.meta["index"].get("metric", "l2")

    def record(self, item: int) -> dict[str, Any]:
        """Path and coordinates of item ``item``."""
        return self.store.record(int(item))

    def reader(self, device: str | None = None):
        """Reads a photo as the index's images were read: uint8 at the model's image size
        (JPEGs left encoded, to decode on ``device``, where that device has nvjpeg)."""
        return _reader(self.meta, device)

    def ids_near(self, latitude: float, longitude: float, radius_m: float) -> np.ndarray:
        """Sorted items within ``radius_m`` metres (great circle) of a point."""
        return self.store.ids_near(latitude, longitude, radius_m)

    def search(self, query_descriptors: np.ndarray, k: int, ids: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items of each query: ``(similarities, indices)``, most similar first.

        Similarities are cosine similarities in [-1, 1] for the L2-normalised descriptors
        of vpr models (``1 - d^2 / 2`` from a squared L2 distance); missing neighbours of
        approximate indexes have index -1. Candidates of lossy indexes (ivfpq, PCA) are
        re-ranked with the exact descriptors, so similarities are exact there too.

        Args:
            query_descriptors: (Q, D) descriptors.
            k: items per query.
            ids: search only these sorted items (e.g. `ids_near`), exactly.
        """
        if ids is not None:
            k = max(1, min(k, len(ids)))
            distances, indices = search_rows(self.descriptors, query_descriptors, k, ids=ids)
            similarities = 1.0 - distances / 2.0
            similarities[indices < 0] = -1.0
            return np.clip(similarities, -1.0, 1.0).astype(np.float32), indices
        options = self.meta["index"].get("options", {})
        lossy = self.meta["index"]["type"] == "ivfpq" or options.get("pca_dim") is not None \
            or options.get("whiten", False)
        scores, indices = search_index(self.index, query_descriptors, k,
                                       rerank_with=self.descriptors if lossy else None)
        similarities = scores if self.metric == "ip" else 1.0 - scores / 2.0
        return np.clip(similarities, -1.0, 1.0).astype(np.float32), indices

    def close(self) -> None:
        """Closes the store (the object is unusable afterwards)."""
        self.store.close()
