"""`--model NAME[:VARIANT]` with `--weights` / `--init_from`: published models on the CLI.

Added to `vpr test`, `vpr train`, `vpr index build/add`, `vpr locate` and `vpr serve` by
one call to `add_published_model_options`, and read in one place, `published_choice`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


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
                                ".pth/.pt/.ckpt/.safetensors file or a Hugging Face repository "
                                "(read from the local cache first; HF_HUB_OFFLINE honoured); "
                                "default: the model's registered hub source")
    else:
        group.add_argument("--weights", default=None, metavar=source,
                           help=weights_help or
                           "the weights of --model: a .pth/.pt/.ckpt/.safetensors file or a "
                           "Hugging Face repository (read from the local cache first; "
                           "HF_HUB_OFFLINE honoured); default: the model's registered hub "
                           "source")


def published_choice(args: argparse.Namespace) -> PublishedChoice:
    """The ``--model`` and ``--weights``/``--init_from`` of a parsed command line."""
    weights = getattr(args, "weights", None) or getattr(args, "init_from", None)
    return PublishedChoice(model=getattr(args, "published_model", None), weights=weights)
