"""Weights files fabricated in the published models' key layouts (random values, real shapes)."""

from __future__ import annotations

import torch
import torchvision
from torch import nn


def torchvision_resnet(name: str, seed: int) -> nn.Module:
    """A torchvision ResNet with random weights and plausible BatchNorm statistics."""
    torch.manual_seed(seed)
    resnet = torchvision.models.get_model(name, weights=None)
    for module in resnet.modules():
        if isinstance(module, nn.BatchNorm2d):
            # Random but benign statistics, so that activations stay finite through 50 layers.
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.0)
            module.bias.data.uniform_(-0.1, 0.1)
    return resnet.eval()


def geolocalization_net_state(backbone: str, dim: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the key layout of CosPlace's/EigenPlaces' GeoLocalizationNet.

    `backbone` is `nn.Sequential(*list(resnet.children())[:-2])` (keys backbone.0 ... 7),
    `aggregation` is `Sequential(L2Norm, GeM, Flatten, Linear, L2Norm)`.
    """
    resnet = torchvision_resnet(backbone, seed)
    sequential = nn.Sequential(*list(resnet.children())[:-2])
    state = {f"backbone.{key}": value for key, value in sequential.state_dict().items()}
    channels = resnet.fc.in_features
    generator = torch.Generator().manual_seed(seed + 1)
    state["aggregation.1.p"] = torch.tensor([2.5]) + torch.rand(1, generator=generator)
    state["aggregation.3.weight"] = torch.randn(dim, channels, generator=generator) * 0.05
    state["aggregation.3.bias"] = torch.randn(dim, generator=generator) * 0.01
    return state
