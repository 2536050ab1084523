"""Reading our checkpoints safely, with errors that say what is wrong with the file."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from vpr.utils.torch_files import describe_file, looks_like_torch_file


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
    if not looks_like_torch_file(path):  # text, empty...: no unpickling to blame
        raise CheckpointError(f"{path}: not a checkpoint: {describe_file(path)}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than tensors and plain data "
            f"(it could run code), so it is not a vpr checkpoint ({error})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint: {describe_file(path)} ({error})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def read_checkpoint_hparams(path: str | Path) -> dict[str, Any]:
    """The VPRModule hyper-parameters stored in one of our checkpoints."""
    return _hparams_of(path, load_checkpoint(path))


def _hparams_of(path: str | Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    hparams = checkpoint.get("hyper_parameters") or {}
    if "agg_arch" not in hparams or "vpr_version" not in hparams:
        raise CheckpointError(
            f"{path}: a Lightning checkpoint, but not of a vpr model (no vpr hyper-parameters); "
            "train one with `vpr train`"
        )
    return dict(hparams)


def check_fits(path: str | Path, checkpoint: dict[str, Any], module: torch.nn.Module) -> None:
    """Checks that a checkpoint's weights fit ``module`` exactly, naming what differs.

    Raises:
        CheckpointError: missing or unexpected parameters, or parameters of another shape; the
            message names them and the vpr versions that wrote and read the file.
    """
    import vpr

    expected = module.state_dict()
    stored = checkpoint["state_dict"]
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    reshaped = [
        f"{key} {tuple(stored[key].shape)} in the file, {tuple(expected[key].shape)} expected"
        for key in expected
        if key in stored and tuple(stored[key].shape) != tuple(expected[key].shape)
    ]
    if not (missing or unexpected or reshaped):
        return
    hparams = checkpoint.get("hyper_parameters") or {}
    written_by = hparams.get("vpr_version") or "an unknown version"
    described = ", ".join(f"{key}={hparams[key]}" for key in ("backbone", "agg_arch",
                          "descriptors_dim") if key in hparams)
    lines = [f"{path}: its weights do not fit the model it describes ({described}); "
             f"it was written by vpr {written_by}, this is vpr {vpr.__version__}."]
    for title, keys in (("missing in the file", missing), ("not in this model", unexpected),
                        ("of another shape", reshaped)):
        if keys:
            shown = "; ".join(keys[:5]) + (f"; ... ({len(keys)} in all)" if len(keys) > 5 else "")
            lines.append(f"  {title}: {shown}")
    if written_by != vpr.__version__:
        lines.append(f"  Use vpr {written_by} to read it (pip install vpr=={written_by}), "
                     "or retrain with this version.")
    raise CheckpointError("\n".join(lines))


def load_module(path: str | Path, **overrides: Any):
    """Builds the `VPRModule` a checkpoint describes and loads its weights (no code runs).

    Args:
        path: a checkpoint of ``vpr train``.
        **overrides: hyper-parameters to replace (evaluation settings, ``pretrained``).

    Raises:
        CheckpointError: the file is unsafe, truncated, not ours, or its weights do not fit
            (the message says what differs, and which versions wrote and read it).
    """
    import inspect

    import vpr
    from vpr.training.module import VPRModule

    checkpoint = load_checkpoint(path)
    hparams = _hparams_of(path, checkpoint)
    accepted = set(inspect.signature(VPRModule.__init__).parameters) - {"self"}
    unknown = sorted(set(hparams) - accepted)
    if unknown:
        raise CheckpointError(
            f"{path}: written by vpr {hparams.get('vpr_version') or 'an unknown version'} with "
            f"settings this vpr {vpr.__version__} does not know: {', '.join(unknown)}"
        )
    module = VPRModule(**{**hparams, **overrides})
    check_fits(path, checkpoint, module)
    module.load_state_dict(checkpoint["state_dict"])
    return module
