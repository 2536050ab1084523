"""Image transforms for training and evaluation."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _resize(image_size: tuple[int, int] | None) -> list[v2.Transform]:
    return [] if image_size is None else [v2.Resize(image_size, antialias=True)]


def train_transform(
    image_size: tuple[int, int] | None = None, randaugment_ops: int = 3,
    mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
) -> v2.Compose:
    """The seed's training augmentation: RandAugment(3), then normalisation.

    Args:
        image_size: (height, width) to resize to first; None keeps the native size.
        randaugment_ops: RandAugment's number of operations; 0 disables augmentation.
        mean, std: the model's input normalisation (default: ImageNet's).
    """
    augment = [v2.RandAugment(num_ops=randaugment_ops)] if randaugment_ops > 0 else []
    return v2.Compose(
        [
            v2.ToImage(),
            *_resize(image_size),
            *augment,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def eval_transform(image_size: tuple[int, int] | None = None,
                   mean: tuple[float, ...] = IMAGENET_MEAN,
                   std: tuple[float, ...] = IMAGENET_STD) -> v2.Compose:
    """Evaluation transform: optional resize, then normalisation by `mean` and `std`."""
    return v2.Compose(
        [
            v2.ToImage(),
            *_resize(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )
