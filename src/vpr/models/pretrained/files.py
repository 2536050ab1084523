"""Reading weights files safely: tensors only, no code from the file ever runs."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".torch")
WEIGHTS_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)


def unwrap_state_dict(stored: object, containers: tuple[str, ...] = ("state_dict", "model")
                      ) -> dict[str, torch.Tensor]:
    """Returns the tensors of a loaded weights file, taken out of its container if any.

    Files come as a bare state dict, or as a dict holding it under "state_dict" (Lightning
    checkpoints) or "model"; DataParallel prefixes every key with "module.", which is
    dropped.

    Raises:
        ValueError: no state dict found.
    """
    if isinstance(stored, Mapping):
        for key in containers:
            inner = stored.get(key)
            if isinstance(inner, Mapping) and inner:
                stored = inner
                break
    if not isinstance(stored, Mapping) or not stored:
        raise ValueError(f"holds no state dict (found {type(stored).__name__})")
    tensors = {str(key): value for key, value in stored.items() if torch.is_tensor(value)}
    if not tensors:
        raise ValueError("holds a dict without tensors, not a state dict")
    if all(key.startswith("module.") for key in tensors):
        tensors = {key.removeprefix("module."): value for key, value in tensors.items()}
    return tensors


class PublishedWeightsError(ValueError):
    """A weights file or source that cannot give the model asked for; the message says why."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Returns the state dict of a `.safetensors`, `.pth`, `.pt`, `.ckpt` or `.bin` file.

    Torch files load with ``weights_only=True`` (a file holding other objects is refused,
    never unpickled); a state dict inside a "state_dict" or "model" entry is taken out.

    Raises:
        FileNotFoundError: no such file.
        PublishedWeightsError: unknown suffix, unreadable or unsafe file, or no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            stored: object = load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as error:
            raise PublishedWeightsError(f"{path}: cannot read the safetensors file ({error})") \
                from None
    elif suffix in TORCH_SUFFIXES:
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise PublishedWeightsError(
                f"{path}: refused to load: the file holds objects other than tensors and plain "
                f"data (it could run code); save its state_dict alone ({error})"
            ) from None
        except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
            raise PublishedWeightsError(f"{path}: cannot read the weights; is it truncated? "
                                        f"({error})") from None
    else:
        raise PublishedWeightsError(
            f"{path}: unknown weights format {suffix or '(no suffix)'}; expected one of "
            f"{', '.join(WEIGHTS_SUFFIXES)}"
        )
    try:
        return unwrap_state_dict(stored)
    except ValueError as error:
        raise PublishedWeightsError(f"{path}: {error}") from None
