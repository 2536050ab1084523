"""`--model NAME[:VARIANT]` with `--weights` / `--init_from`: published models on the CLI.

Added to `vpr test`, `vpr train`, `vpr index build/add`, `vpr locate` and `vpr serve` by
one call to `add_published_model_options`, and read in one place, `published_choice`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PublishedChoice:
    """The published model a command was asked for: its name and where its weights are."""

    model: str | None
    weights: str | None


def _model_help() -> str:
    from vpr.models.pretrained import PUBLISHED_MODELS

    return ("a published model, NAME or NAME:VARIANT (" + ", ".join(sorted(PUBLISHED_MODELS))
            + "; variants and sources in docs/MODELS.md), instead of a checkpoint of ours")


def add_published_model_options(parser: argparse.ArgumentParser, *, train: bool = False,
                                weights_help: str | None = None) -> None:
    """Adds ``--model`` and ``--weights`` (``--init_from`` for ``vpr train``)."""
    group = parser.add_argument_group("published model")
    group.add_argument("--model", dest="published_model", default=None,
                       metavar="NAME[:VARIANT]", help=_model_help())
    source = "FILE|hf:ORG/REPO[/FILE]"
    if train:
        group.add_argument("--init_from", default=None, metavar=source,
                           help="fine-tune --model starting from the authors' weights: a "
                                ".pth/.pt/.ckpt/.torch/.safetensors file or a Hugging Face "
                                "repository (read from the local cache first; HF_HUB_OFFLINE "
                                "honoured); "
                                "default: the model's registered hub source, if any")
    else:
        group.add_argument("--weights", default=None, metavar=source,
                           help=weights_help or
                           "the weights of --model: a .pth/.pt/.ckpt/.torch/.safetensors file or a "
                           "Hugging Face repository (read from the local cache first; "
                           "HF_HUB_OFFLINE honoured); default: the model's registered hub "
                           "source, if any")


def published_choice(args: argparse.Namespace) -> PublishedChoice:
    """The ``--model`` and ``--weights``/``--init_from`` of a parsed command line."""
    weights = getattr(args, "weights", None) or getattr(args, "init_from", None)
    return PublishedChoice(model=getattr(args, "published_model", None), weights=weights)


MOVED_WEIGHTS_HELP = ("the weights file of the index's published model, if it moved "
                      "(checked by sha256)")


def image_size_of(args: argparse.Namespace) -> tuple[int, int] | None:
    """``--image_size H [W]`` as (H, W), or None."""
    size = getattr(args, "image_size", None)
    if not size:
        return None
    if len(size) > 2 or min(size) <= 0:
        raise ValueError(f"--image_size takes H [W] positive pixels, got {size}")
    return (size[0], size[0]) if len(size) == 1 else (size[0], size[1])


def model_file_of_index(index: Any, args: argparse.Namespace) -> str | None:
    """Where the index's model file is now (``--ckpt_path`` or ``--weights``), checking that
    ``--model``, if given, is the index's model."""
    choice = published_choice(args)
    recorded = index.meta["model"]
    if choice.model:
        from vpr.models.pretrained import get_published_model

        asked = get_published_model(choice.model).key
        if asked != recorded.get("published_model"):
            built_with = recorded.get("published_model") or f"checkpoint {recorded['checkpoint']}"
            raise ValueError(f"--model {asked}: index {index.path} was built with {built_with}; "
                             "its descriptors come from that model only")
    if choice.weights and not recorded.get("published_model"):
        raise ValueError(f"--weights: index {index.path} was built with a checkpoint of ours; "
                         "use --ckpt_path if it moved")
    return getattr(args, "ckpt_path", None) or choice.weights
