"""Shared pieces of the key-layout conversions: unwrapping containers, renaming prefixes."""

from __future__ import annotations

from collections.abc import Mapping

import torch

StateDict = Mapping[str, torch.Tensor]

# A torchvision ResNet flattened by `nn.Sequential(*list(resnet.children())[:-2])` numbers
# its children: conv1, bn1, relu, maxpool, layer1..layer4 (relu and maxpool hold no weights).
RESNET_SEQUENTIAL_NAMES: dict[str, str] = {
    "0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4",
}


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


def rename_prefixes(state_dict: StateDict, prefixes: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Renames each key's longest matching prefix from `prefixes`; other keys stay as they are.

    Keys no prefix matches are kept unchanged, so that the strict load that follows names
    them as unexpected instead of silently dropping them.
    """
    ordered = sorted(prefixes, key=len, reverse=True)
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for prefix in ordered:
            if key.startswith(prefix):
                key = prefixes[prefix] + key[len(prefix):]
                break
        renamed[key] = value
    return renamed


def sequential_resnet_prefixes(source: str, target: str = "backbone.") -> dict[str, str]:
    """Prefix map from a ResNet flattened into an `nn.Sequential` at `source` to ours."""
    return {f"{source}{index}.": f"{target}{name}." for index, name in
            RESNET_SEQUENTIAL_NAMES.items()}
