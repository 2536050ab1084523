"""VPRModel: a backbone followed by an aggregator, and the builder that wires them."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vpr.models.aggregators import build_aggregator, get_aggregator_class
from vpr.models.backbones import Backbone, build_backbone


class VPRModel(nn.Module):
    """Maps (B,3,H,W) images to (B,descriptors_dim) L2-normalised descriptors."""

    def __init__(self, backbone: Backbone, aggregator: nn.Module) -> None:
        """Chains `backbone` (images -> feature map) and `aggregator` (map -> descriptors)."""
        super().__init__()
        self.backbone = backbone
        self.aggregator = aggregator
        self.descriptors_dim: int = int(aggregator.out_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Returns the descriptors of a batch of images.

        Evaluation under mixed precision runs the backbone's last stage and the aggregator
        in fp32: descriptors computed wholly in bf16 reorder near-tied database images, which
        moved R@5 by up to 2 points on the synthetic test sets; this way recall stays within
        0.5 points of fp32 (docs/BENCHMARKS.md); for a ViT the last block and final norm run in
        fp32. Training stays wholly in mixed precision.
        """
        device = images.device.type
        fp32_tail = not self.training and torch.is_autocast_enabled(device)
        features, class_token = self.backbone.forward_features(images, fp32_tail=fp32_tail)
        token = class_token if self.aggregator.uses_class_token else None
        if not fp32_tail:
            return self.aggregator(features, token)
        with torch.autocast(device, enabled=False):
            return self.aggregator(features.float(), None if token is None else token.float())


def build_model(
    backbone: str = "resnet18",
    agg_arch: str = "ConvAP",
    descriptors_dim: int = 512,
    image_size: tuple[int, int] = (224, 224),
    pretrained: str = "imagenet",
    agg_options: dict[str, Any] | None = None,
    backbone_options: dict[str, Any] | None = None,
) -> VPRModel:
    """Builds a backbone and an aggregator that fit each other.

    Args:
        backbone: ResNet or DINOv2 ViT name, see `vpr.models.backbones.list_backbones()`.
        agg_arch: aggregator name, see `vpr.models.aggregators.list_aggregators()`.
        descriptors_dim: requested descriptor size (the model's `descriptors_dim` is the
            aggregator's actual `out_dim`, e.g. C for GeM).
        image_size: (H, W) of the input images; sizes the aggregators that depend on it.
        pretrained: "imagenet" (ResNets), "none" or a path to a backbone weights file.
        agg_options: extra keyword options for the aggregator (not modified).
        backbone_options: extra keyword options for `build_backbone` (train_blocks,
            grad_checkpointing, final_norm).

    Returns:
        The assembled model.
    """
    # MixVPR reads an intermediate stage (the paper drops ResNet-18's last two stages);
    # each aggregator class declares which stage it wants.
    # A published model may say otherwise (MixVPR's ResNet-50 is cut after layer3).
    options = dict(backbone_options or {})
    cut_after = options.pop("cut_after", get_aggregator_class(agg_arch).backbone_cut_after)
    feature_extractor = build_backbone(backbone, pretrained=pretrained, cut_after=cut_after,
                                       **options)
    aggregator = build_aggregator(
        agg_arch,
        in_channels=feature_extractor.out_channels,
        feature_size=feature_extractor.feature_size(image_size),
        descriptors_dim=descriptors_dim,
        **dict(agg_options or {}),
    )
    return VPRModel(feature_extractor, aggregator)
