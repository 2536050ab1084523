"""The model to export: a vpr checkpoint, or a named published model.

Either way the result is an `ExportSource`: the eval-mode `VPRModel` (float images in,
L2-normalised descriptors out), its input size and normalisation, and an identity written
into the sidecar, so that an index built from the exported file knows what made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from vpr.export.sidecar import ExportError, file_sha256

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass
class ExportSource:
    """A model ready to export.

    Attributes:
        model: maps (B, 3, H, W) normalised float images to (B, D) descriptors (eval mode).
        image_size: (H, W) the exported graph takes (fixed; the batch size is dynamic).
        descriptors_dim: D.
        identity: what the sidecar records under ``source`` (checkpoint path and sha256...).
        mean, std: per-channel normalisation of [0, 1] RGB pixels.
    """

    model: nn.Module
    image_size: tuple[int, int]
    descriptors_dim: int
    identity: dict[str, Any]
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))


def from_checkpoint(ckpt_path: str | Path,
                    image_size: tuple[int, int] | None = None) -> ExportSource:
    """The model of a `vpr train` checkpoint, on the CPU, in eval mode.

    Args:
        ckpt_path: the ``.ckpt`` file.
        image_size: (H, W) of the exported graph; default the checkpoint's ``image_size``.

    Raises:
        ExportError: no size known (a checkpoint trained at native size and no
            ``image_size``), or a file that is not there.
        CheckpointError: the file is not a vpr checkpoint (another kind, truncated...).
    """
    from vpr.training.checkpoints import load_module

    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise ExportError(f"{ckpt_path}: checkpoint not found (ckpt_path)")
    module = load_module(ckpt_path)  # never fetches backbone weights
    hparams = dict(module.hparams)
    size = image_size or hparams.get("image_size")
    if not size:
        raise ExportError(
            f"{ckpt_path} was trained at the images' native size: an exported graph has one "
            "input size, give it as image_size (H, W), e.g. your images' size")
    model = module.model.eval()
    return ExportSource(
        model=model,
        image_size=(int(size[0]), int(size[1])),
        descriptors_dim=int(model.descriptors_dim),
        identity={"checkpoint": str(ckpt_path.resolve()), "sha256": file_sha256(ckpt_path),
                  "backbone": hparams.get("backbone"), "agg_arch": hparams.get("agg_arch")},
    )


def from_published(name: str, weights: str | Path | None = None,
                   image_size: tuple[int, int] | None = None) -> ExportSource:
    """A named published model (``--model NAME[:VARIANT]``, ``--weights``), built and loaded
    by `vpr.models.pretrained.load.load_published`, with its own mean/std.

    The identity's ``sha256`` is the weights file's: what a location index built from the
    published model records, so the exported file can describe that index's images.

    Raises:
        ExportError: no size known (a model evaluated at native size and no
            ``image_size``).
        PublishedWeightsError: no weights given or registered, or a file that does not fit.
        ValueError: an unknown model name.
    """
    from vpr.models.pretrained import get_published_model
    from vpr.models.pretrained.hub import resolve_weights
    from vpr.models.pretrained.load import default_weights, load_published

    spec = get_published_model(name)
    path = resolve_weights(weights if weights else default_weights(spec))
    model, preprocessing = load_published(spec, path, image_size)
    size = preprocessing.image_size
    if not size:
        raise ExportError(
            f"{spec.key} describes images at their native size: an exported graph has one input "
            "size, give it as image_size (H, W), e.g. your images' size")
    model = model.eval()
    return ExportSource(
        model=model,
        image_size=(int(size[0]), int(size[1])),
        descriptors_dim=int(model.descriptors_dim),
        identity={"checkpoint": None, "published_model": spec.key,
                  "weights": str(Path(path).resolve()),
                  "weights_source": str(weights) if weights else spec.weights,
                  "sha256": file_sha256(path), "backbone": spec.backbone,
                  "agg_arch": spec.agg_arch},
        mean=[float(value) for value in preprocessing.mean],
        std=[float(value) for value in preprocessing.std],
    )
