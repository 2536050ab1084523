"""Torchvision ResNets cut to a feature map, with `out_channels` known up front."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision

from vpr.errors import UserError
from vpr.models.backbones.base import Backbone, check_state_dict, read_state_dict_file

RESNET_NAMES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
CUT_POINTS: tuple[str, ...] = ("layer2", "layer3", "layer4")
_LAYERS: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")
_STEM: tuple[str, ...] = ("conv1", "bn1", "relu", "maxpool")
# Every stride-2 step of a ResNet (conv1, maxpool, first block of layer2/3/4) uses
# padding that maps n -> ceil(n / 2), so the feature size is plain arithmetic.
_HALVINGS: dict[str, int] = {"layer2": 3, "layer3": 4, "layer4": 5}


class PretrainedWeightsError(UserError):  # a RuntimeError
    """Published weights that cannot be fetched; the message says how to proceed."""


class ResNetBackbone(Backbone):
    """A ResNet stem plus its residual stages up to `cut_after`; maps (B,3,H,W) to (B,C,h,w).

    The submodules keep torchvision's names (`conv1`, `bn1`, `layer1`, ...) so the state_dict
    keys are those of a torchvision ResNet without `fc`, and files load either way. The
    global token is the average of the feature map.
    """

    def __init__(self, resnet: torchvision.models.ResNet, name: str, cut_after: str) -> None:
        """Takes the modules of `resnet` up to and including `cut_after`."""
        last_block = getattr(resnet, cut_after)[-1]
        # Bottleneck blocks end with bn3, BasicBlocks with bn2: the last BN's width is C.
        last_norm = last_block.bn3 if hasattr(last_block, "bn3") else last_block.bn2
        super().__init__(name, int(last_norm.num_features))
        self.cut_after = cut_after
        self.stages: tuple[str, ...] = _STEM + _LAYERS[: _LAYERS.index(cut_after) + 1]
        for stage in self.stages:
            self.add_module(stage, getattr(resnet, stage))

    def feature_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Returns the (h, w) of the feature map for an image of size (H, W)."""
        height, width = image_size
        for _ in range(_HALVINGS[self.cut_after]):
            height, width = (height + 1) // 2, (width + 1) // 2
        return height, width

    def forward_features(
        self, images: torch.Tensor, *, fp32_tail: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the (B,C,h,w) map and its (B,C) spatial mean; see `Backbone`."""
        features = images
        for stage in self.stages[:-1]:
            features = getattr(self, stage)(features)
        last = getattr(self, self.stages[-1])
        if fp32_tail:
            with torch.autocast(images.device.type, enabled=False):
                features = last(features.float())
        else:
            features = last(features)
        return features, features.mean(dim=(2, 3))

    def set_train_blocks(self, train_blocks: int | None) -> None:
        """Fine-tunes only the last `train_blocks` residual stages; None trains everything."""
        if train_blocks is None:
            return
        kept = self.stages[len(_STEM):]
        if not 0 <= train_blocks <= len(kept):
            raise ValueError(
                f"train_blocks={train_blocks} is out of range for {self.name} cut after "
                f"{self.cut_after}: 0..{len(kept)} residual stages"
            )
        frozen = _STEM + kept[: len(kept) - train_blocks]
        self.freeze(tuple(name for name in frozen if name not in ("relu", "maxpool")))


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
            f"To proceed: train from scratch with pretrained='none'; or download the file "
            f"elsewhere and put it at {cache_file}; or pass pretrained='/path/to/weights.pth'."
        ) from None


def _load_state_dict_file(path: Path, backbone: ResNetBackbone) -> None:
    """Loads a state_dict file into `backbone`, ignoring `fc.*` and the stages that were cut."""
    state_dict = read_state_dict_file(path)
    cut_layers = _LAYERS[_LAYERS.index(backbone.cut_after) + 1 :]
    # A full ResNet file must load into a backbone cut earlier, so its later stages are skipped.
    ignored_prefixes = ("fc.", *(f"{layer}." for layer in cut_layers))
    kept = {key: value for key, value in state_dict.items() if not key.startswith(ignored_prefixes)}
    check_state_dict(kept, backbone, f"{path} does not fit {backbone.name} cut after "
                                     f"{backbone.cut_after}")
    backbone.load_state_dict(kept)


def build_resnet(
    name: str,
    pretrained: str | Path = "imagenet",
    cut_after: str = "layer4",
    train_blocks: int | None = None,
) -> ResNetBackbone:
    """Builds a torchvision ResNet cut after `cut_after`, without avgpool and fc.

    Args:
        name: one of `RESNET_NAMES`.
        pretrained: "imagenet" for torchvision's DEFAULT weights, "none" for random
            initialisation, or the path of a state_dict file (.pth/.pt/.safetensors).
        cut_after: the last residual stage kept: "layer2", "layer3" or "layer4".
        train_blocks: fine-tune only the last N residual stages (None: all).
    """
    if cut_after not in CUT_POINTS:
        raise ValueError(f"Unknown cut point {cut_after!r}; valid ones: {', '.join(CUT_POINTS)}")
    resnet = torchvision.models.get_model(name, weights=None)
    keyword = str(pretrained).strip().lower()
    if keyword == "imagenet":
        resnet.load_state_dict(_imagenet_state_dict(name))
    backbone = ResNetBackbone(resnet, name, cut_after)
    if keyword not in ("imagenet", "none"):
        _load_state_dict_file(Path(pretrained).expanduser(), backbone)
    backbone.set_train_blocks(train_blocks)
    return backbone
