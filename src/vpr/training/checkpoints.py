"""Reading our checkpoints safely, with errors that say what is wrong with the file."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A file that is not a usable vpr checkpoint."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint with ``weights_only=True``: no code from the file ever runs.

    Raises:
        CheckpointError: missing, truncated, unsafe, or not a Lightning checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than tensors and plain data "
            f"(it could run code), so it is not a vpr checkpoint ({error})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint; is it truncated or not a .ckpt? ({error})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def read_checkpoint_hparams(path: str | Path) -> dict[str, Any]:
    """The VPRModule hyper-parameters stored in one of our checkpoints."""
    checkpoint = load_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters") or {}
    if "agg_arch" not in hparams or "vpr_version" not in hparams:
        raise CheckpointError(
            f"{path}: a Lightning checkpoint, but not of a vpr model (no vpr hyper-parameters); "
            "train one with `vpr train`"
        )
    return dict(hparams)
