"""The model an index describes images with: loading it, its identity, checking it again.

The model is not copied into an index: the store records the checkpoint's path and sha256
(or, for a published model, its name and its weights file's path, source and sha256), and
the model is reloaded from there (and checked against the hash) to describe new photos, so
that a query is never compared with descriptors of another model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vpr.locate.versions import LocationIndexError
from vpr.utils.hashing import file_sha256 as sha256_of


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


def index_model(index: Path, recorded: dict[str, Any], ckpt_path: str | Path | None = None,
                runtime: Any = None):
    """The model that made the descriptors of ``index`` (its identity ``recorded``),
    checked by sha256; see `vpr.locate.index.LocationIndex.load_model`."""
    from vpr.export.runtime import extractor_for_index

    extractor = extractor_for_index(runtime, recorded, index)
    if extractor is not None:
        return extractor
    if recorded.get("published_model"):
        return _index_published_model(index, recorded, ckpt_path)
    path = Path(ckpt_path or recorded["checkpoint"])
    if not path.is_file():
        raise LocationIndexError(
            f"{path}: the checkpoint of index {index} is not there; pass ckpt_path "
            "with its current location"
        )
    if sha256_of(path) != recorded["sha256"]:
        raise LocationIndexError(
            f"{path} is not the checkpoint index {index} was built with "
            f"({recorded['checkpoint']}, sha256 {recorded['sha256'][:12]}...): its "
            "descriptors would not be comparable; build a new index for this checkpoint"
        )
    module, _ = load_model(path)
    return module


def _index_published_model(index: Path, recorded: dict[str, Any],
                           weights: str | Path | None):
    """The published model of ``index``, from its weights file (moved: `weights`)."""
    from vpr.models.pretrained.hub import resolve_weights

    source = weights or (recorded["weights"] if Path(recorded["weights"]).is_file()
                         else recorded.get("weights_source") or recorded["weights"])
    try:
        path = resolve_weights(source)
    except FileNotFoundError:
        raise LocationIndexError(
            f"{source}: the weights of index {index} ({recorded['published_model']}) "
            "are not there; pass weights with their current location") from None
    if sha256_of(path) != recorded["sha256"]:
        raise LocationIndexError(
            f"{path} is not the weights file index {index} was built with "
            f"({recorded['weights']}, sha256 {recorded['sha256'][:12]}...): its "
            "descriptors would not be comparable; build a new index for these weights")
    size = recorded.get("image_size")
    module, _, _ = load_published_model(recorded["published_model"], path,
                                        tuple(size) if size else None)
    return module
