"""One way to get a published model: `load_published(model_spec, weights)`.

Every entry point (vpr test / index / locate / serve / train --init_from) comes here: the
registry says what to build and how the authors' keys map onto ours; the weights come from
a file or ``hf:ORG/REPO[/FILE]``; a file that does not fit names the keys that differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vpr.models.aggregators import build_aggregator, get_aggregator_class
from vpr.models.backbones import RESNET_NAMES, build_backbone
from vpr.models.model import VPRModel
from vpr.models.pretrained.files import PublishedWeightsError, read_state_dict
from vpr.models.pretrained.hub import is_hub_spec, resolve_weights
from vpr.models.pretrained.registry import PublishedModel, StateDict, get_published_model

# The feature size that sizes a size-agnostic aggregator when the model has no fixed size.
_NOMINAL_SIZE = (224, 224)


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for a model: size (None: native) and normalisation."""

    image_size: tuple[int, int] | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def published_model(model_spec: str) -> PublishedModel:
    """The registry entry of ``NAME[:VARIANT]`` (ValueError listing valid ones if unknown)."""
    return get_published_model(model_spec)


def preprocessing_of(model: PublishedModel,
                     image_size: tuple[int, int] | None = None) -> Preprocessing:
    """The model's own preprocessing; `image_size` (e.g. ``--image_size``) overrides its size."""
    size = tuple(image_size) if image_size else model.image_size
    return Preprocessing(image_size=size, mean=tuple(model.mean), std=tuple(model.std))


def build_published_architecture(model: PublishedModel,
                                 image_size: tuple[int, int] | None = None) -> VPRModel:
    """The model's network with random weights (load them with `fit_published_weights`).

    Args:
        model: the registry entry.
        image_size: the input size; sizes the aggregators tied to it (MixVPR). Default: the
            model's published size.
    """
    size = tuple(image_size) if image_size else (model.image_size or _NOMINAL_SIZE)
    if model.backbone not in RESNET_NAMES:
        raise PublishedWeightsError(
            f"{model.key}: backbone {model.backbone} cannot be built by this vpr")
    options = dict(model.backbone_options)
    cut_after = options.pop("cut_after", get_aggregator_class(model.agg_arch).backbone_cut_after)
    backbone = build_backbone(model.backbone, pretrained="none", cut_after=cut_after, **options)
    aggregator = build_aggregator(model.agg_arch, in_channels=backbone.out_channels,
                                  feature_size=backbone.feature_size(size),
                                  descriptors_dim=model.descriptors_dim, **model.agg_options)
    network = VPRModel(backbone, aggregator)
    if network.descriptors_dim != model.descriptors_dim:
        raise PublishedWeightsError(  # a registry entry that contradicts itself
            f"{model.key}: built {network.descriptors_dim}-D descriptors, published "
            f"{model.descriptors_dim}-D")
    return network


def fit_published_weights(network: torch.nn.Module, model: PublishedModel,
                          state_dict: StateDict, source: str | Path) -> None:
    """Loads the authors' `state_dict` into `network` strictly, after mapping their keys.

    Raises:
        PublishedWeightsError: keys missing, unexpected or of another shape, all named.
    """
    converted = model.convert(state_dict)
    expected = network.state_dict()
    # BatchNorm's step counter only matters without momentum; files from old PyTorch lack it.
    missing = sorted(key for key in set(expected) - set(converted)
                     if not key.endswith("num_batches_tracked"))
    unexpected = sorted(set(converted) - set(expected))
    reshaped = sorted(
        f"{key} {tuple(converted[key].shape)} in the file, {tuple(expected[key].shape)} expected"
        for key in set(converted) & set(expected)
        if tuple(converted[key].shape) != tuple(expected[key].shape))
    if missing or unexpected or reshaped:
        parts = []
        for title, keys in (("missing", missing), ("unexpected", unexpected),
                            ("of another shape", reshaped)):
            if keys:
                shown = "; ".join(keys[:4]) + (f"; ... ({len(keys)} in all)" if len(keys) > 4
                                               else "")
                parts.append(f"{len(keys)} keys {title}: {shown}")
        raise PublishedWeightsError(
            f"{source} does not fit {model.key} ({model.backbone} + {model.agg_arch}, "
            f"{model.descriptors_dim}-D, the authors' key layout): " + " | ".join(parts))
    for key, value in expected.items():
        converted.setdefault(key, value)
    network.load_state_dict({key: converted[key] for key in expected})


def default_weights(model: PublishedModel) -> str:
    """The registered ``hf:`` source of a model, or an error saying where to get the file."""
    if is_hub_spec(model.weights):
        return model.weights
    where = f"; the authors publish it at {model.weights}" if model.weights else ""
    raise PublishedWeightsError(
        f"--model {model.key} needs --weights FILE or hf:ORG/REPO[/FILE] (no hub source is "
        f"registered for it{where})")


def load_published(model_spec: str, weights: str | Path | None = None,
                   image_size: tuple[int, int] | None = None
                   ) -> tuple[VPRModel, Preprocessing]:
    """Builds the named published model and loads its weights.

    Args:
        model_spec: ``NAME[:VARIANT]``, e.g. ``cosplace:resnet50-2048`` or ``mixvpr``.
        weights: a weights file (.pth/.pt/.ckpt/.safetensors) or ``hf:ORG/REPO[/FILE]``;
            default: the model's registered hub source.
        image_size: input size overriding the model's own.

    Returns:
        The model in eval mode, and the preprocessing its inputs need.
    """
    model = published_model(model_spec)
    path = resolve_weights(weights if weights else default_weights(model))
    network = build_published_architecture(model, image_size)
    fit_published_weights(network, model, read_state_dict(path), path)
    network.eval()
    return network, preprocessing_of(model, image_size)
