"""The contract every backbone keeps: images -> feature map (+ a global token), known sizes."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from vpr.utils.torch_files import describe_file, looks_like_torch_file


class Backbone(nn.Module):
    """Maps (B,3,H,W) images to a (B,C,h,w) feature map; C and (h,w) are known up front.

    Subclasses set `name` and `out_channels`, and implement `feature_size` and
    `forward_features`. Fine-tuning only the last parts is shared here: the parts listed by
    `freeze` lose `requires_grad` and stay in eval mode whatever `train()` is called with.
    """

    def __init__(self, name: str, out_channels: int) -> None:
        """Stores the registry name and the channel count C of the feature map."""
        super().__init__()
        self.name = name
        self.out_channels = int(out_channels)
        # Names of frozen sub-modules (names, not modules, so they are not registered twice).
        self.frozen_modules: tuple[str, ...] = ()

    def feature_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Returns the (h, w) of the feature map for an image of size (H, W)."""
        raise NotImplementedError

    def forward_features(
        self, images: torch.Tensor, *, fp32_tail: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the (B,C,h,w) feature map and a (B,C) global token of a batch of images.

        Args:
            images: (B,3,H,W) normalised images.
            fp32_tail: run the last stage in fp32 even under autocast (evaluation precision,
                see `VPRModel.forward`).
        """
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Returns the (B,C,h,w) feature map of a batch of images."""
        return self.forward_features(images)[0]

    def freeze(self, module_names: tuple[str, ...], parameter_names: tuple[str, ...] = ()) -> None:
        """Stops training the named sub-modules and bare parameters (e.g. a ViT's cls_token).

        Frozen parts get no gradient and stay in eval mode, so BatchNorm statistics and
        dropout do not change when the model is put in train mode.
        """
        for name in module_names:
            self.get_submodule(name).requires_grad_(False)
        for name in parameter_names:
            self.get_parameter(name).requires_grad_(False)
        self.frozen_modules = tuple(module_names)
        self.train(self.training)

    def train(self, mode: bool = True) -> Backbone:
        """Sets the training mode, keeping frozen parts in eval mode (no BN/dropout updates)."""
        super().train(mode)
        for name in self.frozen_modules:
            self.get_submodule(name).eval()
        return self


def read_state_dict_file(path: Path) -> Mapping[str, torch.Tensor]:
    """Reads a state_dict from a .pth/.pt (torch.load) or .safetensors file."""
    if not path.is_file():
        raise FileNotFoundError(f"Backbone weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # Say what a file that is not a torch save is (text, truncated) instead of a pickle error.
    problem = None if looks_like_torch_file(path) else describe_file(path)
    if problem is None:
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as error:
            problem = f"{describe_file(path)}: {str(error).splitlines()[0]}"
    if problem is not None:
        raise ValueError(f"pretrained={path}: cannot read the weights: {problem}; pass a "
                         "state_dict saved with torch.save, 'imagenet' or 'none'")
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{path} does not hold a state_dict (found {type(state_dict).__name__})")
    return state_dict


def check_state_dict(
    state_dict: Mapping[str, torch.Tensor], module: nn.Module, what: str
) -> None:
    """Raises ValueError naming the missing, unexpected and reshaped keys of `state_dict`.

    Args:
        state_dict: the weights about to be loaded into `module`.
        module: the module whose `state_dict()` keys and shapes are expected.
        what: the file or model named in the message, e.g. "salad.ckpt does not fit SALAD".
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(
        f"{key}: file {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in set(state_dict) & set(expected)
        if tuple(state_dict[key].shape) != tuple(expected[key].shape)
    )
    if missing or unexpected or wrong_shape:
        raise ValueError(
            f"{what}: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}, "
            f"{len(wrong_shape)} shape mismatches {wrong_shape[:5]}"
        )
