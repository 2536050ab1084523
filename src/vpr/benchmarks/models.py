"""The models a benchmark compares: our checkpoints, and named published models."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from vpr.training.checkpoints import CheckpointError


@dataclass
class BenchmarkModel:
    """A ready model and what identifies it in the descriptor cache and the table.

    Attributes:
        label: the row name of the table.
        module: maps (B,3,H,W) normalised images to (B,D) descriptors.
        identity: a hash of the weights file (and model name): descriptors are cached under it.
        image_size: (H, W) the model was trained or published at; None keeps native sizes.
    """

    label: str
    module: nn.Module
    identity: str
    image_size: tuple[int, int] | None


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_label(path: str | Path) -> str:
    """``<run folder>/<file stem>`` for ``<run>/checkpoints/<file>.ckpt``, else the stem."""
    path = Path(path)
    if path.parent.name == "checkpoints":
        return f"{path.parent.parent.name}/{path.stem}"
    return path.stem


def load_checkpoint_model(path: str | Path) -> BenchmarkModel:
    """One of our checkpoints, rebuilt from its stored hyper-parameters."""
    from vpr.training.checkpoints import load_module

    module = load_module(path)
    size = module.hparams.get("image_size")
    return BenchmarkModel(label=checkpoint_label(path), module=module,
                          identity=f"ckpt-{file_sha256(path)}",
                          image_size=tuple(size) if size else None)


def load_published_model(name: str, weights: str | Path) -> BenchmarkModel:
    """A named published model with its authors' weights (`vpr.models.pretrained`).

    This is the one adapter to the published-model loader, which lands separately.

    Raises:
        CheckpointError: the loader is not available in this version, or the weights do
            not fit the named model.
    """
    try:
        from vpr.models.pretrained import load_published  # type: ignore[attr-defined]
    except ImportError:
        raise CheckpointError(
            f"--model {name}: published models are not available yet in this version of vpr "
            "(vpr.models.pretrained has no loader); benchmark your own checkpoints with "
            "--ckpt_path"
        ) from None
    if not Path(weights).is_file():
        raise CheckpointError(f"{weights}: weights file of --model {name} not found")
    module, spec = load_published(name, weights)
    size = getattr(spec, "image_size", None)
    return BenchmarkModel(label=name, module=module,
                          identity=f"{name}-{file_sha256(weights)}",
                          image_size=tuple(size) if size else None)


def unique_labels(models: list[BenchmarkModel]) -> None:
    """Appends #2, #3... to repeated labels so every table row is distinct."""
    seen: dict[str, int] = {}
    for model in models:
        count = seen.get(model.label, 0) + 1
        seen[model.label] = count
        if count > 1:
            model.label = f"{model.label}#{count}"
