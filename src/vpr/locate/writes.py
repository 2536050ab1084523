"""The writes of a location index, each made by the writer that holds its lock.

A new index (`_build_locked`: the model, the images' rows and descriptors, the faiss file,
the store, the first version), an empty one (`_create_locked`), and rows appended to one
(`_add_locked`); `vpr.locate.index.LocationIndex` takes the lock and reopens the result.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vpr
from vpr.eval.search import add_to_index, build_index, index_metric, load_index, save_index
from vpr.locate import storage
from vpr.locate.model_source import _jsonable, _model_identity, load_any_model
from vpr.locate.records import _image_paths, image_records
from vpr.locate.store import ImageStore
from vpr.locate.versions import (
    FAISS_FILE,
    _copy_rows,
    _needs_faiss,
    _now,
    _store_name,
    _stray_stores,
    _write_version,
)

logger = logging.getLogger(__name__)


def _build_locked(out: Path, ckpt_path: Path | None,
                  database: str | Path | Sequence[str | Path], index_type: str,
                  describe: Any, index_options: dict[str, Any] | None,
                  published: dict[str, Any] | None = None, runtime: Any = None,
                  device: str = "cpu") -> None:
    """Describes the images and publishes the first version of ``out`` (holding its lock);
    see `vpr.locate.index.LocationIndex.build`."""
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


def _create_locked(out: Path, model: dict[str, Any], dim: int) -> None:
    """Publishes an empty flat version of ``out`` (holding its lock); see
    `vpr.locate.index.LocationIndex.create`."""
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


def _add_locked(folder: Path, data_path: Path, store: ImageStore, sources: list[str],
                images: str | Path | Sequence[str | Path], make_rows: Any) -> int:
    """Appends the rows of the images ``store`` lacks and publishes a version counting them
    (holding the lock of index ``folder``, whose current version is ``data_path``, ``sources``
    its recorded sources); see `vpr.locate.index.LocationIndex.add_rows`."""
    if isinstance(images, (str, Path)) or not all(
            isinstance(path, (str, Path)) and Path(path).is_absolute() for path in images):
        candidates = _image_paths(images)
    else:  # already resolved paths (e.g. made-up rows): no file system walk
        candidates = [Path(path) for path in images]
    known = store.known_paths([str(path) for path in candidates])
    paths = [path for path in candidates if str(path) not in known]
    if not paths:
        logger.info("No new image to add to %s", folder)
        return 0
    records, new = make_rows(paths)
    temporary = storage.new_version_folder(folder)
    try:
        if (data_path / FAISS_FILE).is_file():
            # A fresh copy of the faiss index: this object stays unchanged if anything
            # fails. (Approximate indexes are rewritten whole; a flat one has no file.)
            index = load_index(data_path / FAISS_FILE)
            add_to_index(index, new)
            save_index(index, temporary / FAISS_FILE)
            del index
        grown = ImageStore(store.folder, store.rows, store.dim)
        rows = grown.append(records, new)
        grown.close()
        sources = list(sources)
        if isinstance(images, (str, Path)):
            sources.append(str(Path(images).resolve()))
        _write_version(temporary, store.folder.name, rows, store.dim, _now(), sources)
        storage.publish(folder, temporary)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return len(paths)
