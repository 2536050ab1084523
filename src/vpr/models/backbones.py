"""Torchvision ResNets cut to a feature map, with `out_channels` known up front."""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import nn

from vpr.utils.torch_files import describe_file, looks_like_torch_file

RESNET_NAMES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
CUT_POINTS: tuple[str, ...] = ("layer2", "layer3", "layer4")
_LAYERS: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")
# Every stride-2 step of a ResNet (conv1, maxpool, first block of layer2/3/4) uses
# padding that maps n -> ceil(n / 2), so the feature size is plain arithmetic.
_HALVINGS: dict[str, int] = {"layer2": 3, "layer3": 4, "layer4": 5}


class PretrainedWeightsError(RuntimeError):
    """Published weights that cannot be fetched; the message says how to proceed."""


def list_backbones() -> list[str]:
    """Returns the names accepted by `build_backbone`."""
    return list(RESNET_NAMES)


class Backbone(nn.Sequential):
    """A ResNet stem plus its residual stages up to `cut_after`; maps (B,3,H,W) to (B,C,h,w).

    The submodules keep torchvision's names (`conv1`, `bn1`, `layer1`, ...) so the state_dict
    keys are those of a torchvision ResNet without `fc`, and files load either way.
    """

    def __init__(self, resnet: torchvision.models.ResNet, name: str, cut_after: str) -> None:
        """Takes the modules of `resnet` up to and including `cut_after`."""
        kept_layers = _LAYERS[: _LAYERS.index(cut_after) + 1]
        modules = OrderedDict(
            [("conv1", resnet.conv1), ("bn1", resnet.bn1), ("relu", resnet.relu)]
            + [("maxpool", resnet.maxpool)]
            + [(layer, getattr(resnet, layer)) for layer in kept_layers]
        )
        super().__init__(modules)
        self.name = name
        self.cut_after = cut_after
        last_block = getattr(resnet, cut_after)[-1]
        # Bottleneck blocks end with bn3, BasicBlocks with bn2: the last BN's width is C.
        last_norm = last_block.bn3 if hasattr(last_block, "bn3") else last_block.bn2
        self.out_channels: int = int(last_norm.num_features)

    def feature_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Returns the (h, w) of the feature map for an image of size (H, W)."""
        height, width = image_size
        for _ in range(_HALVINGS[self.cut_after]):
            height, width = (height + 1) // 2, (width + 1) // 2
        return height, width


def _resolve_name(name: str) -> str:
    """Returns the canonical ResNet name for `name` (exact, case-insensitive) or raises."""
    canonical = name.strip().lower()
    if canonical not in RESNET_NAMES:
        raise ValueError(f"Unknown backbone {name!r}; valid names: {', '.join(RESNET_NAMES)}")
    return canonical


def _imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """Fetches torchvision's DEFAULT ImageNet weights for `name` through the torch hub cache."""
    weights = torchvision.models.get_model_weights(name).DEFAULT
    try:
        return weights.get_state_dict(progress=False)
    except (OSError, RuntimeError) as error:
        # URLError is an OSError (no network); a truncated download surfaces as RuntimeError.
        filename = weights.url.rsplit("/", 1)[-1]
        cache_file = Path(torch.hub.get_dir()) / "checkpoints" / filename
        # The user's to fix: reported as one line, with no chained traceback.
        raise PretrainedWeightsError(
            f"Could not fetch the ImageNet weights for {name} from {weights.url} ({error}). "
            f"To proceed: train from scratch with `--pretrained none`; or download the file "
            f"elsewhere and put it at {cache_file}; or pass `--pretrained /path/to/weights.pth`."
        ) from None


def _load_state_dict_file(path: Path, backbone: Backbone) -> None:
    """Loads a state_dict file into `backbone`, ignoring `fc.*` and the stages that were cut."""
    if not path.is_file():
        raise FileNotFoundError(f"Backbone weights file not found: {path}")
    problem = None if looks_like_torch_file(path) else describe_file(path)
    if problem is None:
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as error:
            problem = f"{describe_file(path)}: {str(error).splitlines()[0]}"
    if problem is not None:
        raise ValueError(f"--pretrained {path}: cannot read the weights: {problem}; pass a "
                         "state_dict saved with torch.save, 'imagenet' or 'none'")
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{path} does not hold a state_dict (found {type(state_dict).__name__})")
    cut_layers = _LAYERS[_LAYERS.index(backbone.cut_after) + 1 :]
    # A full ResNet file must load into a backbone cut earlier, so its later stages are skipped.
    ignored_prefixes = ("fc.", *(f"{layer}." for layer in cut_layers))
    kept = {key: value for key, value in state_dict.items() if not key.startswith(ignored_prefixes)}
    expected = backbone.state_dict()
    missing = sorted(set(expected) - set(kept))
    unexpected = sorted(set(kept) - set(expected))
    wrong_shape = sorted(
        f"{key}: file {tuple(kept[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in set(kept) & set(expected)
        if kept[key].shape != expected[key].shape
    )
    if missing or unexpected or wrong_shape:
        raise ValueError(
            f"{path} does not fit {backbone.name} cut after {backbone.cut_after}: "
            f"{len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}, "
            f"{len(wrong_shape)} shape mismatches {wrong_shape[:5]}"
        )
    backbone.load_state_dict(kept)


def build_backbone(
    name: str = "resnet18", pretrained: str | Path = "imagenet", cut_after: str = "layer4"
) -> Backbone:
    """Builds a torchvision ResNet cut after `cut_after`, without avgpool and fc.

    Args:
        name: one of `list_backbones()`, matched exactly and case-insensitively.
        pretrained: "imagenet" for torchvision's DEFAULT weights, "none" for random
            initialisation, or the path of a state_dict file (.pth/.pt).
        cut_after: the last residual stage kept: "layer2", "layer3" or "layer4".

    Returns:
        The backbone, with `out_channels` and `feature_size(image_size)`.
    """
    canonical = _resolve_name(name)
    if cut_after not in CUT_POINTS:
        raise ValueError(f"Unknown cut point {cut_after!r}; valid ones: {', '.join(CUT_POINTS)}")
    resnet = torchvision.models.get_model(canonical, weights=None)
    keyword = str(pretrained).strip().lower()
    if keyword == "imagenet":
        resnet.load_state_dict(_imagenet_state_dict(canonical))
        return Backbone(resnet, canonical, cut_after)
    backbone = Backbone(resnet, canonical, cut_after)
    if keyword != "none":
        _load_state_dict_file(Path(pretrained).expanduser(), backbone)
    return backbone
