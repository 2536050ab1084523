"""The model to export: a vpr checkpoint, or (soon) a named published model.

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
        raise ExportError(f"{ckpt_path}: checkpoint not found (--ckpt_path)")
    module = load_module(ckpt_path, pretrained="none")
    hparams = dict(module.hparams)
    size = image_size or hparams.get("image_size")
    if not size:
        raise ExportError(
            f"{ckpt_path} was trained at the images' native size: an exported graph has one "
            "input size, pass it with --image_size H W (e.g. your images' size)")
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
    """A named published model (``--model``, with ``--weights``), through
    `vpr.models.pretrained`.

    Raises:
        ExportError: always for now: the loader of published models is being built (branch
            ``weights``); until it is connected here, export its checkpoint instead.
    """
    # The one adapter to connect once vpr.models.pretrained can build a loaded VPRModel:
    # registry entry -> model + image size + mean/std -> ExportSource.
    raise ExportError(
        f"--model {name}: exporting named published models is not available yet in this "
        "vpr; export a checkpoint with --ckpt_path instead")
