"""A location index: the descriptors of geotagged images, saved once, searched for each photo.

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

Opening an index reads ``version.json`` and opens the SQLite file: no cost grows with the
number of images; rows are read by id when a search returns them. ``index add`` appends
the new descriptors and rows to the store in one transaction and publishes a new version
counting them; nothing else is rewritten (but the faiss file of an approximate index).

The model is not copied: the store records the checkpoint's path and sha256 (or, for a
published model, its name and its weights file's path, source and sha256), and the model is
reloaded from there (and checked against the hash) to describe new photos, so that a query
is never compared with descriptors of another model.

Writes are atomic and exclusive: a writer holds ``.lock`` (a second one waits, up to
``lock_timeout`` seconds), writes a new version, and switches ``CURRENT`` to it in one
rename; see `vpr.locate.storage` for the steps and how a crash's leftovers are recovered.
Rows a crashed writer appended but never published are removed by the next writer.
Indexes of format 1 (``descriptors.npy``, ``index.faiss`` and ``meta.json``, read whole)
are migrated to this layout the first time they are opened.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import vpr
from vpr.data.geotag import parse_filename
from vpr.data.images import list_images
from vpr.eval.search import (
    INDEX_KINDS,
    ExactIndex,
    add_to_index,
    build_index,
    index_metric,
    load_index,
    save_index,
    search_index,
    search_rows,
)
from vpr.locate import storage
from vpr.locate.store import Column, ImageStore
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


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _image_paths(images: str | Path | Sequence[str | Path]) -> list[Path]:
    """A folder (searched recursively), one image, or a list of images, as resolved paths."""
    if isinstance(images, (str, Path)):
        images = Path(images)
        paths = list_images(images) if images.is_dir() else [images]
    else:
        paths = [Path(path) for path in images]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image not found")
    return [path.resolve() for path in paths]


def _latlon(tag: Any) -> tuple[float | None, float | None]:
    """The tag's latitude/longitude, from its fields or else from its UTM zone."""
    if tag.latitude is not None and tag.longitude is not None:
        return tag.latitude, tag.longitude
    if tag.utm_zone_number is None or not tag.utm_zone_letter:
        return None, None
    import utm

    try:
        latitude, longitude = utm.to_latlon(tag.utm_east, tag.utm_north, tag.utm_zone_number,
                                            tag.utm_zone_letter)
    except (utm.error.OutOfRangeError, ValueError):
        # Made-up coordinates (tests, some synthetic sets): no lat/lon rather than a crash.
        return None, None
    return float(latitude), float(longitude)


def image_records(paths: Sequence[Path]) -> dict[str, list[Any]]:
    """The coordinates of each image from its @-name, as the columns of the store.

    Raises:
        GeoTagError: an image name without UTM coordinates.
    """
    records: dict[str, list[Any]] = {key: [] for key in (
        "paths", "utm_east", "utm_north", "utm_zone_number", "utm_zone_letter", "latitude",
        "longitude")}
    for path in paths:
        tag = parse_filename(path)
        latitude, longitude = _latlon(tag)
        records["paths"].append(str(path))
        records["utm_east"].append(tag.utm_east)
        records["utm_north"].append(tag.utm_north)
        records["utm_zone_number"].append(tag.utm_zone_number)
        records["utm_zone_letter"].append(tag.utm_zone_letter)
        records["latitude"].append(latitude)
        records["longitude"].append(longitude)
    return records


def load_model(ckpt_path: str | Path):
    """Loads the `VPRModule` of a vpr checkpoint on the CPU (weights only, no download).

    Returns:
        ``(module, hparams)``.
    """
    from vpr.training.checkpoints import load_module

    module = load_module(ckpt_path)
    return _ready(module)


def load_published_model(model: str, weights: str | Path | None,
                         image_size: tuple[int, int] | None = None):
    """Builds a published model (``NAME[:VARIANT]``) with its weights, on the CPU.

    Returns:
        ``(module, hparams, weights_path)``: the path the weights were read from.
    """
    from vpr.training.published import published_module

    module, path = published_module(model, weights, image_size)
    return (*_ready(module), path)


def load_any_model(ckpt_path: Path | None, published: dict[str, Any] | None):
    """The model a build describes images with: a checkpoint, or a published model.

    Returns:
        ``(module, hparams, weights record or None, what it is, for messages)``.
    """
    if published is None:
        module, hparams = load_model(ckpt_path)
        return module, hparams, None, str(ckpt_path)
    from vpr.models.pretrained import get_published_model

    module, hparams, weights_path = load_published_model(
        published["model"], published["weights"], published["image_size"])
    # Recorded as given (an hf: source re-resolves), else the registered source.
    given = published["weights"]
    record = (str(given) if given else get_published_model(published["model"]).weights,
              weights_path)
    return module, hparams, record, f"{hparams['published_model']} ({weights_path})"


def _ready(module: Any):
    """The module in eval mode, reading uint8 images with its model's normalisation."""
    from vpr.inputs.batch_augment import InputTransform
    from vpr.training.published import normalization_of

    hparams = dict(module.hparams)
    normalization = normalization_of(hparams)
    mean_std = {} if normalization is None else dict(zip(("mean", "std"), normalization))
    module.configure_input(InputTransform(channels_last=True, **mean_std))
    module.eval()
    return module, hparams


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _model_identity(ckpt_path: Path | None, hparams: dict[str, Any], descriptors_dim: int,
                    weights: tuple[str, Path] | None = None) -> dict[str, Any]:
    """What rebuilds the model: a checkpoint, or a published model and its weights file."""
    size = hparams.get("image_size")
    identity: dict[str, Any] = {
        "checkpoint": str(ckpt_path.resolve()) if ckpt_path else None,
        "sha256": sha256_of(ckpt_path if ckpt_path else weights[1]),
        "hparams": _jsonable(hparams),
        "image_size": list(size) if size else None,
        "descriptors_dim": int(descriptors_dim),
    }
    if weights is not None:
        source, path = weights
        identity.update(published_model=hparams["published_model"],
                        weights=str(Path(path).resolve()), weights_source=source)
    return identity


def _reader(meta: dict[str, Any], device: str | None = None):
    """uint8 images at the model's size; JPEGs decoded on ``device`` where it has nvjpeg."""
    from vpr.inputs.decode import UInt8Reader
    from vpr.inputs.device_decode import EncodedReader, device_decode_available

    size = meta["model"]["image_size"]
    size = tuple(size) if size else None
    if device is not None and device_decode_available(device):
        return EncodedReader(size)
    return UInt8Reader(size)


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


def _extract(module: Any, paths: Sequence[Path], meta: dict[str, Any], out_path: Path | None,
             batch_size: int, num_workers: int, device: str, precision: str | None,
             progress: bool, into: np.ndarray | None = None) -> np.ndarray:
    from vpr.eval.extract import ImageFolderDataset, extract_descriptors

    dataset = ImageFolderDataset(paths, reader=_reader(meta, device))
    return extract_descriptors(module, dataset, out_path=out_path, batch_size=batch_size,
                               num_workers=num_workers, device=device, precision=precision,
                               progress=progress, into=into)


def resolve_device(device: str) -> str:
    """A torch device string: ``"auto"`` is chosen by `vpr.hardware.single_device`."""
    from vpr.hardware import single_device

    return str(single_device(device))


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
                    cls._migrate_locked(path, data)
                return cls.load(path, nprobe=nprobe, efSearch=efSearch)
        except (LockTimeoutError, OSError) as error:  # busy, or a read-only folder
            if isinstance(error, FileNotFoundError):
                raise
            logger.warning("%s: an index of format 1, opened as it is (not migrated: %s)",
                           path, error)
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
        return cls(path, meta, store, index, data_path=data)

    @staticmethod
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
                cls._build_locked(out, Path(ckpt_path) if ckpt_path else None, database,
                                  index_type, describe, index_options, published,
                                  runtime=runtime, device=resolve_device(device))
        except BaseException:
            if created and not storage.is_index(out):
                shutil.rmtree(out, ignore_errors=True)
            raise
        return cls.load(out)

    @classmethod
    def _build_locked(cls, out: Path, ckpt_path: Path | None,
                      database: str | Path | Sequence[str | Path], index_type: str,
                      describe: Any, index_options: dict[str, Any] | None,
                      published: dict[str, Any] | None = None, runtime: Any = None,
                      device: str = "cpu") -> None:
        module, hparams, weights_record, source = load_any_model(ckpt_path, published)
        paths = _image_paths(database)
        records = image_records(paths)
        options = _jsonable(dict(index_options or {}))
        meta: dict[str, Any] = {
            "vpr_version": vpr.__version__,
            "created": _now(),
            "model": _model_identity(ckpt_path, hparams, module.model.descriptors_dim,
                                     weights_record),
            "index": {"type": index_type, "options": options},
        }
        from vpr.export.runtime import extractor_for_build

        # The runtime decides what describes the images (the checkpoint's module, or its
        # exported ONNX model); the store's model identity records it, so that later adds
        # and queries are described alike.
        module, meta["model"]["runtime"] = extractor_for_build(runtime, module, meta["model"],
                                                               device)
        sources = [str(Path(database).resolve())] if isinstance(database, (str, Path)) else []
        temporary = storage.new_version_folder(out)
        store_name = _store_name(temporary)
        done = False
        try:
            logger.info("Describing %d images with %s", len(paths), source)
            descriptors = describe(module, paths, meta, temporary / "new.npy")
            if _needs_faiss(index_type, options):
                index = build_index(descriptors, kind=index_type, **dict(index_options or {}))
                meta["index"]["metric"] = index_metric(index)
                save_index(index, temporary / FAISS_FILE)
                del index
            else:
                meta["index"]["metric"] = "l2"
            store = ImageStore.create(out / store_name, descriptors.shape[1], meta)
            _copy_rows(descriptors, store, records)
            store.close()
            dim = descriptors.shape[1]
            del descriptors  # release the memmap before the folder is renamed
            (temporary / "new.npy").unlink(missing_ok=True)
            _write_version(temporary, store_name, len(paths), dim, _now(), sources)
            storage.publish(out, temporary)
            done = True
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
            if not done:
                shutil.rmtree(out / store_name, ignore_errors=True)
        for stray in _stray_stores(out):  # the replaced index's store (with --overwrite)
            shutil.rmtree(stray, ignore_errors=True)
        logger.info("Saved index of %d images in %s", len(paths), out)

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
            temporary = storage.new_version_folder(out)
            store_name = _store_name(temporary)
            try:
                ImageStore.create(out / store_name, dim, {
                    "vpr_version": vpr.__version__, "created": _now(), "model": model,
                    "index": {"type": "flat", "options": {}, "metric": "l2"}}).close()
                _write_version(temporary, store_name, 0, dim, _now(), [])
                storage.publish(out, temporary)
            finally:
                shutil.rmtree(temporary, ignore_errors=True)
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
                self._migrate_locked(self.path, data)
            self._become(LocationIndex.load(self.path))
            added = self._add_locked(images, make_rows)
        if added:
            self._become(LocationIndex.load(self.path))
            logger.info("Added %d images to %s (%d in all)", added, self.path, len(self))
        return added

    def _become(self, other: LocationIndex) -> None:
        self.meta, self.store, self.index, self.data_path = (
            other.meta, other.store, other.index, other.data_path)

    def _add_locked(self, images: str | Path | Sequence[str | Path], make_rows: Any) -> int:
        if isinstance(images, (str, Path)) or not all(
                isinstance(path, (str, Path)) and Path(path).is_absolute() for path in images):
            candidates = _image_paths(images)
        else:  # already resolved paths (e.g. made-up rows): no file system walk
            candidates = [Path(path) for path in images]
        known = self.store.known_paths([str(path) for path in candidates])
        paths = [path for path in candidates if str(path) not in known]
        if not paths:
            logger.info("No new image to add to %s", self.path)
            return 0
        records, new = make_rows(paths)
        temporary = storage.new_version_folder(self.path)
        try:
            if (self.data_path / FAISS_FILE).is_file():
                # A fresh copy of the faiss index: this object stays unchanged if anything
                # fails. (Approximate indexes are rewritten whole; a flat one has no file.)
                index = load_index(self.data_path / FAISS_FILE)
                add_to_index(index, new)
                save_index(index, temporary / FAISS_FILE)
                del index
            store = ImageStore(self.store.folder, len(self), self.store.dim)
            rows = store.append(records, new)
            store.close()
            sources = list(self.meta.get("sources", []))
            if isinstance(images, (str, Path)):
                sources.append(str(Path(images).resolve()))
            _write_version(temporary, self.store.folder.name, rows, self.store.dim, _now(),
                           sources)
            storage.publish(self.path, temporary)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return len(paths)

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
        from vpr.export.runtime import extractor_for_index

        extractor = extractor_for_index(runtime, self.meta["model"], self.path)
        if extractor is not None:
            return extractor
        recorded = self.meta["model"]
        if recorded.get("published_model"):
            return self._load_published(ckpt_path)
        path = Path(ckpt_path or recorded["checkpoint"])
        if not path.is_file():
            raise LocationIndexError(
                f"{path}: the checkpoint of index {self.path} is not there; pass ckpt_path "
                "with its current location"
            )
        if sha256_of(path) != recorded["sha256"]:
            raise LocationIndexError(
                f"{path} is not the checkpoint index {self.path} was built with "
                f"({recorded['checkpoint']}, sha256 {recorded['sha256'][:12]}...): its "
                "descriptors would not be comparable; build a new index for this checkpoint"
            )
        module, _ = load_model(path)
        return module

    def _load_published(self, weights: str | Path | None):
        """The published model of this index, from its weights file (moved: `weights`)."""
        from vpr.models.pretrained.hub import resolve_weights

        recorded = self.meta["model"]
        source = weights or (recorded["weights"] if Path(recorded["weights"]).is_file()
                             else recorded.get("weights_source") or recorded["weights"])
        try:
            path = resolve_weights(source)
        except FileNotFoundError:
            raise LocationIndexError(
                f"{source}: the weights of index {self.path} ({recorded['published_model']}) "
                "are not there; pass weights with their current location") from None
        if sha256_of(path) != recorded["sha256"]:
            raise LocationIndexError(
                f"{path} is not the weights file index {self.path} was built with "
                f"({recorded['weights']}, sha256 {recorded['sha256'][:12]}...): its "
                "descriptors would not be comparable; build a new index for these weights")
        size = recorded.get("image_size")
        module, _, _ = load_published_model(recorded["published_model"], path,
                                            tuple(size) if size else None)
        return module

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
