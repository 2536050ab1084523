"""RandAugment on a whole batch at once, on the device the model runs on.

The seed augments each image in a DataLoader worker with torchvision's ``RandAugment(3)``:
per image, ``num_ops`` operations drawn uniformly from 14, each at magnitude 9 of 31 bins
with a random sign. `BatchRandAugment` draws the same operations, magnitudes and signs per
image, but applies each operation to all the images that drew it in one tensor call, so the
work runs on the accelerator (or vectorised on the CPU) instead of in Python per image.
Geometric operations (shear, translate, rotate) are one ``grid_sample`` with a per-image
affine matrix, nearest-neighbour sampling and black fill, as in torchvision's defaults.

`InputTransform` turns the uint8 batches of the fast pipeline into the model's input:
float, optionally augmented, normalised, optionally channels-last.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vpr.data.transforms import IMAGENET_MEAN, IMAGENET_STD

OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
       "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
_SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
           "Contrast", "Sharpness"}


def op_magnitudes(magnitude: int, num_bins: int, height: int, width: int) -> dict[str, float]:
    """The magnitude of each operation at bin ``magnitude``, as torchvision's RandAugment."""
    step = magnitude / (num_bins - 1)
    return {
        "ShearX": 0.3 * step, "ShearY": 0.3 * step,
        "TranslateX": 150.0 / 331.0 * width * step, "TranslateY": 150.0 / 331.0 * height * step,
        "Rotate": 30.0 * step,
        "Brightness": 0.9 * step, "Color": 0.9 * step, "Contrast": 0.9 * step,
        "Sharpness": 0.9 * step,
        "Posterize": float(8 - int(round(magnitude / ((num_bins - 1) / 4)))),
        "Solarize": 1.0 - step,
    }


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    weights = images.new_tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1 - factor) * other).clamp_(0, 1)


def _sharpen_source(images: torch.Tensor) -> torch.Tensor:
    """torchvision's 'degenerate' image for sharpness: a 3x3 smoothing, borders unchanged."""
    kernel = images.new_tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    kernel = kernel.expand(images.shape[1], 1, 3, 3)
    smooth = F.conv2d(images, kernel, groups=images.shape[1])
    out = images.clone()
    out[..., 1:-1, 1:-1] = smooth
    return out


def _equalize(images: torch.Tensor) -> torch.Tensor:
    """Per image and channel histogram equalisation on 256 levels (torchvision's rule)."""
    batch, channels, height, width = images.shape
    levels = (images * 255).round_().long().view(batch * channels, -1)
    hist = torch.zeros(batch * channels, 256, device=images.device)
    hist.scatter_add_(1, levels, torch.ones_like(levels, dtype=hist.dtype))
    # step = (pixels - count of the last non-empty level) // 255
    last = 255 - torch.argmax((hist.flip(1) > 0).int(), dim=1)
    last_count = hist.gather(1, last[:, None]).squeeze(1)
    step = torch.div(hist.sum(1) - last_count, 255, rounding_mode="floor")
    cumulative = hist.cumsum(1)
    safe_step = step.clamp(min=1)[:, None]
    lut = torch.div(cumulative + torch.div(safe_step, 2, rounding_mode="floor"), safe_step,
                    rounding_mode="floor")
    lut = F.pad(lut[:, :-1], (1, 0)).clamp_(0, 255)
    identity = torch.arange(256, device=images.device, dtype=lut.dtype).expand_as(lut)
    lut = torch.where((step == 0)[:, None], identity, lut)
    out = lut.gather(1, levels) / 255.0
    return out.view(batch, channels, height, width).to(images.dtype)


def _affine(images: torch.Tensor, op: str, magnitude: torch.Tensor) -> torch.Tensor:
    """Shear, translate or rotate each image by its own signed magnitude (B,)."""
    batch, _, height, width = images.shape
    theta = torch.zeros(batch, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    if op == "ShearX":  # about the top-left corner, torchvision's direction
        theta[:, 0, 1] = magnitude * height / width
        theta[:, 0, 2] = magnitude * height / width
    elif op == "ShearY":
        theta[:, 1, 0] = magnitude * width / height
        theta[:, 1, 2] = magnitude * width / height
    elif op == "TranslateX":
        theta[:, 0, 2] = -2 * magnitude / width
    elif op == "TranslateY":
        theta[:, 1, 2] = -2 * magnitude / height
    else:  # Rotate, degrees, about the centre
        radians = magnitude * math.pi / 180
        cos, sin = torch.cos(radians), torch.sin(radians)
        theta[:, 0, 0] = cos
        theta[:, 0, 1] = sin * height / width
        theta[:, 1, 0] = -sin * width / height
        theta[:, 1, 1] = cos
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros",
                         align_corners=False)


def apply_op(images: torch.Tensor, op: str, magnitude: torch.Tensor) -> torch.Tensor:
    """One RandAugment operation on float images in [0, 1], a signed magnitude per image."""
    if op == "Identity":
        return images
    if op in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"):
        return _affine(images, op, magnitude)
    if op == "Brightness":
        return _blend(images, torch.zeros_like(images), 1 + magnitude)
    if op == "Color":
        return _blend(images, _grayscale(images), 1 + magnitude)
    if op == "Contrast":
        mean = _grayscale(images).mean(dim=(1, 2, 3), keepdim=True)
        return _blend(images, mean, 1 + magnitude)
    if op == "Sharpness":
        return _blend(images, _sharpen_source(images), 1 + magnitude)
    if op == "Posterize":
        bits = magnitude.round().long().view(-1, 1, 1, 1)
        mask = (255 >> (8 - bits)) << (8 - bits)
        return ((images * 255).round().long() & mask).to(images.dtype) / 255
    if op == "Solarize":
        threshold = magnitude.view(-1, 1, 1, 1)
        return torch.where(images >= threshold, 1 - images, images)
    if op == "AutoContrast":
        low = images.amin(dim=(2, 3), keepdim=True)
        high = images.amax(dim=(2, 3), keepdim=True)
        scale = torch.where(high > low, 1 / (high - low).clamp(min=1e-12), torch.ones_like(high))
        low = torch.where(high > low, low, torch.zeros_like(low))
        return ((images - low) * scale).clamp_(0, 1)
    if op == "Equalize":
        return _equalize(images)
    raise ValueError(f"unknown RandAugment operation {op!r}; valid: {', '.join(OPS)}")


class BatchRandAugment(nn.Module):
    """torchvision's ``RandAugment(num_ops, magnitude)``, drawn per image, applied per batch.

    Args:
        num_ops: operations applied to each image in sequence.
        magnitude: bin of the magnitude (0 .. num_magnitude_bins - 1), torchvision's 9.
        num_magnitude_bins: as torchvision (31).
    """

    def __init__(self, num_ops: int = 3, magnitude: int = 9, num_magnitude_bins: int = 31):
        super().__init__()
        self.num_ops = num_ops
        self.magnitude = magnitude
        self.num_magnitude_bins = num_magnitude_bins

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """Augments float images in [0, 1], shape (B,3,H,W); randomness from ``generator``.

        The draws are made on the CPU from ``generator`` (the global RNG if None), so the
        same generator state gives the same augmentation on any device.
        """
        batch, _, height, width = images.shape
        magnitudes = op_magnitudes(self.magnitude, self.num_magnitude_bins, height, width)
        for _ in range(self.num_ops):
            choice = torch.randint(len(OPS), (batch,), generator=generator)
            signs = torch.where(torch.rand(batch, generator=generator) <= 0.5, -1.0, 1.0)
            out = images.clone()
            for index, op in enumerate(OPS):
                chosen = (choice == index).nonzero().flatten()
                if op == "Identity" or len(chosen) == 0:
                    continue
                magnitude = torch.full((len(chosen),), magnitudes.get(op, 0.0))
                if op in _SIGNED:
                    magnitude = magnitude * signs[chosen]
                chosen = chosen.to(images.device)
                out[chosen] = apply_op(images[chosen], op, magnitude.to(images.device,
                                                                        images.dtype))
            images = out
        return images


class InputTransform(nn.Module):
    """uint8 image batches to the model's input: float, augmented, normalised, channels-last.

    Args:
        randaugment_ops: RandAugment operations per training image (0: none).
        channels_last: return the batch in channels-last memory format.
        mean, std: the model's input normalisation (default: ImageNet's; a published model
            carries its own).
    """

    def __init__(self, randaugment_ops: int = 0, channels_last: bool = False,
                 mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD) -> None:
        super().__init__()
        self.augment = BatchRandAugment(randaugment_ops) if randaugment_ops > 0 else None
        self.channels_last = channels_last
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, images: torch.Tensor, augment: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if images.dtype == torch.uint8:
            images = images.float().div_(255)
            if augment and self.augment is not None:
                images = self.augment(images, generator)
            images = (images - self.mean) / self.std
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images
