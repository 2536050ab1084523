"""The models a benchmark compares: our checkpoints, and named published models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from vpr.inputs.transforms import IMAGENET_MEAN, IMAGENET_STD
from vpr.utils.hashing import file_sha256


@dataclass
class BenchmarkModel:
    """A ready model and what identifies it in the descriptor cache and the table.

    Attributes:
        label: the row name of the table.
        module: maps (B,3,H,W) normalised images to (B,D) descriptors.
        identity: a hash of the weights file (and model name): descriptors are cached under it.
        image_size: (H, W) the model was trained or published at; None keeps native sizes.
        mean: the normalisation mean its inputs need (RGB, 0-1 scale).
        std: the normalisation standard deviation.
    """

    label: str
    module: nn.Module
    identity: str
    image_size: tuple[int, int] | None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


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


def load_published_model(name: str, weights: str | Path | None) -> BenchmarkModel:
    """A named published model with its authors' weights (`vpr.models.pretrained`).

    The one adapter to the published-model loader (``load_published(name, weights)`` ->
    ``(model, preprocessing)``): the table uses the model's own size and normalisation.

    Raises:
        PublishedWeightsError: the weights are missing or do not fit the model.
    """
    from vpr.models.pretrained.load import load_published

    module, preprocessing = load_published(name, weights)
    if weights is None:  # the model's registered source
        from vpr.models.pretrained import get_published_model
        from vpr.models.pretrained.load import default_weights

        weights = default_weights(get_published_model(name))
    path = Path(weights)
    if not path.is_file():  # an hf:ORG/REPO spec: hash the file it resolved to
        from vpr.models.pretrained.hub import resolve_weights

        path = Path(resolve_weights(str(weights)))
    size = getattr(preprocessing, "image_size", None)
    return BenchmarkModel(label=name, module=module, identity=f"{name}-{file_sha256(path)}",
                          image_size=tuple(size) if size else None,
                          mean=tuple(getattr(preprocessing, "mean", IMAGENET_MEAN)),
                          std=tuple(getattr(preprocessing, "std", IMAGENET_STD)))


def unique_labels(models: list[BenchmarkModel]) -> None:
    """Appends #2, #3... to repeated labels so every table row is distinct."""
    seen: dict[str, int] = {}
    for model in models:
        count = seen.get(model.label, 0) + 1
        seen[model.label] = count
        if count > 1:
            model.label = f"{model.label}#{count}"
