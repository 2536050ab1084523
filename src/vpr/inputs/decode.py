"""Reading images as uint8 tensors, fast, with the same checks as `vpr.data.images`.

The fast input pipeline decodes with torchvision's libjpeg-turbo/libpng bindings straight
into a uint8 (3,H,W) tensor and resizes it in uint8, leaving the float conversion,
augmentation and normalisation to the device (`vpr.inputs.batch_augment`). A worker thus
does a quarter of the memory traffic of the seed's float pipeline, and batches travel to
the accelerator as uint8.

The stored pixels are turned upright by the file's EXIF orientation (`vpr.inputs.orientation`),
read from the header the checks open anyway, so these tensors are `open_rgb`'s pixels.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2 import functional as TF

from vpr.data.images import BadImageError, open_rgb, read_image_header
from vpr.inputs.orientation import orient_tensor


def read_uint8(path: str | Path) -> torch.Tensor:
    """Decodes an image file to an upright RGB uint8 tensor (3,H,W).

    The header is checked first (with Pillow, without decoding): an empty, truncated or
    non-image file, or a decompression bomb, raises before any pixel is decoded. Formats
    torchvision does not decode to 8-bit RGB (16-bit PNG, CMYK JPEG...) go through Pillow.

    Raises:
        BadImageError: the file cannot be read as an image; the message names it.
    """
    header = read_image_header(path)
    if header.problem:
        raise BadImageError(f"{path}: cannot read image ({header.problem})")
    try:
        image = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
        if image.dtype == torch.uint8 and image.shape[0] == 3:
            return orient_tensor(image, header.orientation)
    except (RuntimeError, ValueError, OSError):
        pass
    return TF.pil_to_tensor(open_rgb(path))  # open_rgb orients it


class UInt8Reader:
    """``path -> uint8 (3,H,W)`` upright, at ``image_size`` (None keeps the native size);
    picklable.

    Resizing in uint8 (antialiased, as the float pipeline) keeps the worker's work and the
    batch small.
    """

    def __init__(self, image_size: tuple[int, int] | None = None) -> None:
        self.image_size = tuple(image_size) if image_size else None

    def __call__(self, path: str | Path) -> torch.Tensor:
        image = read_uint8(path)
        if self.image_size is not None and tuple(image.shape[-2:]) != self.image_size:
            image = TF.resize(image, list(self.image_size), antialias=True)
        return image
