"""Named published models by exact name: what to build, how to read the authors' weights."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class PublishedModel:
    """One published model variant: its architecture, preprocessing and weight layout.

    Attributes:
        name: exact registry name, e.g. "salad" or "cosplace".
        variant: the variant within the family, e.g. "resnet50-2048"; "" for the only one.
        backbone: our backbone registry name (e.g. "resnet50", "dinov2_vitb14").
        agg_arch: our aggregator registry name.
        agg_options: aggregator keyword options.
        descriptors_dim: the published descriptor size.
        image_size: (H, W) the authors evaluate at; None: every image at its own size.
        mean: normalisation mean (RGB, 0-1 scale).
        std: normalisation std.
        convert: maps the authors' state dict (already unwrapped from its container) onto our
            `VPRModel.state_dict()` keys; raises on keys it does not know.
        weights: where the weights are published (an `hf:ORG/REPO/FILE` spec or a URL), for
            the docs and the hf: resolver.
        published: published figures, e.g. {"MSLS-val R@1": (92.2, "serizba/salad README")}.
        backbone_options: extra keyword options for the backbone.
    """

    name: str
    variant: str
    backbone: str
    agg_arch: str
    descriptors_dim: int
    image_size: tuple[int, int] | None
    convert: Callable[[StateDict], dict[str, torch.Tensor]]
    agg_options: dict[str, Any] = field(default_factory=dict)
    backbone_options: dict[str, Any] = field(default_factory=dict)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    weights: str = ""
    published: dict[str, tuple[float, str]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """`name` or `name:variant`, the spelling users type."""
        return f"{self.name}:{self.variant}" if self.variant else self.name


# "name" -> {"variant": PublishedModel}; the first registered variant is the default.
PUBLISHED_MODELS: dict[str, dict[str, PublishedModel]] = {}


def register_published_model(model: PublishedModel) -> PublishedModel:
    """Registers `model` under its (lower-cased) name and variant; warns on a duplicate."""
    variants = PUBLISHED_MODELS.setdefault(model.name.lower(), {})
    if model.variant.lower() in variants:
        warnings.warn(f"Published model {model.key!r} is registered twice", stacklevel=2)
    variants[model.variant.lower()] = model
    return model


def list_published_models() -> list[str]:
    """Returns every `name[:variant]` spelling, sorted."""
    return sorted(m.key for variants in PUBLISHED_MODELS.values() for m in variants.values())


def get_published_model(name: str, variant: str | None = None) -> PublishedModel:
    """Looks a model up by exact name (case-insensitive) and variant (default: the first).

    `name` may also be written "name:variant". An unknown name or variant raises ValueError
    listing the valid ones.
    """
    if variant is None and ":" in name:
        name, variant = name.split(":", 1)
    variants = PUBLISHED_MODELS.get(name.strip().lower())
    if variants is None:
        raise ValueError(
            f"Unknown model {name!r}; valid models: {', '.join(list_published_models()) or 'none'}"
        )
    if variant is None or variant == "":
        return next(iter(variants.values()))
    found = variants.get(variant.strip().lower())
    if found is None:
        raise ValueError(
            f"Unknown variant {variant!r} of {name}; valid: {', '.join(sorted(variants))}"
        )
    return found
