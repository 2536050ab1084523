"""One way to get a published model: `load_published(model_spec, weights)`.

Every entry point (vpr test / index / locate / serve / train --init_from) comes here: the
registry says what to build and how the authors' keys map onto ours; the weights come from
a file or ``hf:ORG/REPO[/FILE]``; a file that does not fit names the keys that differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vpr.models.model import VPRModel
from vpr.models.pretrained.build import build_published_model
from vpr.models.pretrained.files import PublishedWeightsError, read_state_dict
from vpr.models.pretrained.hub import is_hub_spec, resolve_weights
from vpr.models.pretrained.registry import PublishedModel, get_published_model


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for a model: size (None: native) and normalisation."""

    image_size: tuple[int, int] | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def preprocessing_of(model: PublishedModel,
                     image_size: tuple[int, int] | None = None) -> Preprocessing:
    """The model's own preprocessing; `image_size` (e.g. ``--image_size``) overrides its size."""
    size = tuple(image_size) if image_size else model.image_size
    return Preprocessing(image_size=size, mean=tuple(model.mean), std=tuple(model.std))


def default_weights(model: PublishedModel) -> str:
    """The registered ``hf:`` source of a model, or an error saying where to get the file."""
    if is_hub_spec(model.weights):
        return model.weights
    where = f"; the authors publish it at {model.weights}" if model.weights else ""
    raise PublishedWeightsError(
        f"{model.key} needs its weights: give weights (or, to start training from it, "
        f"init_from) as FILE or hf:ORG/REPO[/FILE]; no hub source is registered for it{where}")


def load_published(model_spec: str | PublishedModel, weights: str | Path | None = None,
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

    Raises:
        PublishedWeightsError: no weights given or found, or a file that does not fit (its
            missing, unexpected and reshaped keys named).
    """
    model = (model_spec if isinstance(model_spec, PublishedModel)
             else get_published_model(model_spec))
    path = resolve_weights(weights if weights else default_weights(model))
    state_dict = read_state_dict(path)
    try:
        network = build_published_model(model, state_dict, image_size=image_size)
    except ValueError as error:
        raise PublishedWeightsError(f"{path} ({model.key}): {error}") from None
    return network, preprocessing_of(model, image_size)
