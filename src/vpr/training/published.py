"""Published models in our workflows: their hyper-parameters, weights and normalisation.

A `VPRModule` whose ``published_model`` hyper-parameter names a registry entry (e.g.
``cosplace:resnet50-2048``) builds that architecture; the authors' weights are loaded into
it once (``vpr test --weights``, ``vpr train --init_from``). A checkpoint of ours then holds
the weights and the name, so it reloads without the original file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vpr.models.pretrained import get_published_model
from vpr.models.pretrained.load import load_published

# The hyper-parameters a published model fixes; an explicit flag may not contradict them.
FIXED_KEYS = ("backbone", "agg_arch", "descriptors_dim", "agg_options")


def published_hparams(spec: str, image_size: tuple[int, int] | list[int] | None = None
                      ) -> dict[str, Any]:
    """The VPRModule hyper-parameters of published model `spec` (``NAME[:VARIANT]``).

    Args:
        spec: the registry name.
        image_size: an explicit input size; default: the model's own (None: native size).
    """
    model = get_published_model(spec)
    return {
        "published_model": model.key,
        "backbone": model.backbone,
        "agg_arch": model.agg_arch,
        "descriptors_dim": model.descriptors_dim,
        "agg_options": dict(model.agg_options),
        "image_size": tuple(image_size) if image_size else model.image_size,
        # The weights come from the authors' file or our checkpoint, never from ImageNet.
        "pretrained": "none",
    }


def normalization_of(hparams: dict[str, Any]
                     ) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (mean, std) of a published model's inputs; None (ImageNet's) for our own models."""
    spec = hparams.get("published_model")
    if not spec:
        return None
    model = get_published_model(spec)
    return tuple(model.mean), tuple(model.std)


def load_published_weights(module: Any, spec: str, weights: str | Path | None,
                           image_size: tuple[int, int] | list[int] | None = None) -> None:
    """Loads the authors' weights of `spec` (a file or ``hf:`` source) into ``module.model``.

    Raises:
        PublishedWeightsError: the weights cannot be found or do not fit (keys named).
    """
    network, _ = load_published(spec, weights, tuple(image_size) if image_size else None)
    module.model.load_state_dict(network.state_dict())


def published_module(spec: str, weights: str | Path | None,
                     image_size: tuple[int, int] | list[int] | None = None):
    """A `VPRModule` of published model `spec` holding its weights, for evaluation.

    Returns:
        ``(module, weights_path)``: the local file the weights were read from.
    """
    from vpr.models.pretrained.hub import resolve_weights
    from vpr.models.pretrained.load import default_weights
    from vpr.training.module import VPRModule

    path = resolve_weights(weights if weights else default_weights(get_published_model(spec)))
    module = VPRModule(**published_hparams(spec, image_size))
    load_published_weights(module, spec, path, image_size)
    return module, path
