"""Builds our `VPRModel` for a published model and loads the authors' weights into it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from vpr.models.backbones import check_state_dict
from vpr.models.model import VPRModel, build_model
from vpr.models.pretrained.keymap import unwrap_state_dict
from vpr.models.pretrained.registry import PublishedModel

# The size that sizes the aggregator of a model evaluated at each image's own size
# (CosPlace, EigenPlaces: their aggregators do not depend on it).
NOMINAL_IMAGE_SIZE = (224, 224)


def build_published_architecture(model: PublishedModel,
                                 image_size: tuple[int, int] | None = None,
                                 **backbone_options: Any) -> VPRModel:
    """Returns the published architecture with random weights (nothing is downloaded).

    Args:
        model: the registry entry.
        image_size: the input size, overriding the model's own (sizes MixVPR's mixers).
        **backbone_options: more `build_backbone` options (train_blocks, grad_checkpointing).
    """
    network = build_model(
        backbone=model.backbone,
        agg_arch=model.agg_arch,
        descriptors_dim=model.descriptors_dim,
        image_size=tuple(image_size or model.image_size or NOMINAL_IMAGE_SIZE),
        pretrained="none",
        agg_options=dict(model.agg_options),
        backbone_options={**model.backbone_options, **backbone_options},
    )
    if network.descriptors_dim != model.descriptors_dim:
        raise RuntimeError(
            f"{model.key} builds {network.descriptors_dim}-D descriptors, not the published "
            f"{model.descriptors_dim}"
        )
    return network


def build_published_model(
    model: PublishedModel,
    state_dict: Mapping[str, torch.Tensor],
    *,
    converted: bool = False,
    image_size: tuple[int, int] | None = None,
) -> VPRModel:
    """Builds `model`'s architecture and loads its weights strictly, in eval mode.

    Args:
        model: the registry entry (architecture, input size, layout).
        state_dict: the authors' weights as read from their file (a Lightning checkpoint's
            "state_dict" entry is unwrapped), converted with `model.convert`; or, with
            `converted=True`, weights already in our key layout.
        converted: skip the conversion.
        image_size: the input size, overriding the model's own.

    Raises:
        ValueError: the weights do not fit: unknown upstream keys, or missing/unexpected/
            reshaped keys after conversion (named in the message).
    """
    # Built on the meta device (no time spent on a random initialisation that the weights
    # replace); `assign=True` then puts the loaded tensors in place.
    with torch.device("meta"):
        network = build_published_architecture(model, image_size)
    ours = dict(state_dict) if converted else model.convert(unwrap_state_dict(state_dict))
    check_state_dict(ours, network, f"the weights do not fit {model.key}")
    expected = network.state_dict()
    ours = {key: value.to(expected[key].dtype) for key, value in ours.items()}
    network.load_state_dict(ours, strict=True, assign=True)
    left = [name for name, tensor in [*network.named_parameters(), *network.named_buffers()]
            if tensor.is_meta]
    if left:
        raise RuntimeError(f"{model.key}: tensors not set by the weights: {left[:5]}")
    return network.eval()
