"""JPEG decoding on the accelerator (nvjpeg through torchvision), for when CPUs are the limit.

With ``--decode device`` DataLoader workers only read and check each file (`EncodedReader`);
a batch travels as the JPEGs' bytes (`EncodedBatch`) and the process that drives the model
decodes all of them in one call of ``torchvision.io.decode_jpeg(..., device=...)``, resizes
them on the device, and hands a uint8 (N,3,H,W) batch to the same on-device augmentation
and normalisation as ``--decode worker``. On a CUDA device the decoder is nvjpeg; on a CPU
it is the same libjpeg-turbo the workers use, so both modes give the same pixels there.

Files that are not JPEGs (PNG, WebP...) are decoded in the worker as usual and travel as
uint8 images inside the same batch. A JPEG that passes the header checks but fails to
decode on the device is decoded again alone, then with Pillow, before an error names it.

nvjpeg does not read EXIF: each JPEG's orientation travels beside its bytes (read from the
header the worker checks) and the decoded image is turned upright on the device
(`vpr.inputs.orientation`) before it is resized, so both modes give `open_rgb`'s pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import default_collate
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms.v2 import functional as TF

from vpr.data.images import BadImageError, read_image_header
from vpr.hardware import device_decode_available  # noqa: F401 - where it used to live
from vpr.inputs.decode import UInt8Reader
from vpr.inputs.orientation import orient_tensor

JPEG_START = b"\xff\xd8\xff"


class EncodedBatch:
    """Images of a batch, each still JPEG bytes (1-D uint8) or already a uint8 (3,H,W) image.

    Args:
        items: the images, in batch order.
        paths: the file of each image, for error messages.
        image_size: (height, width) every decoded image is resized to; None keeps the native
            size (then all images of a batch must have the same size).
        orientations: the EXIF orientation of each still-encoded image, applied once it is
            decoded (None: all 1; decoded images are already upright).
    """

    def __init__(self, items: Sequence[torch.Tensor], paths: Sequence[str],
                 image_size: tuple[int, int] | None,
                 orientations: Sequence[int] | None = None) -> None:
        self.items = list(items)
        self.paths = [str(path) for path in paths]
        self.image_size = tuple(image_size) if image_size else None
        self.orientations = list(orientations) if orientations else [1] * len(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        encoded = sum(item.dim() == 1 for item in self.items)
        return f"EncodedBatch({len(self)} images, {encoded} still encoded)"

    def __getstate__(self) -> dict:
        # Between processes (DataLoader workers) the bytes travel as one tensor: one shared
        # memory segment per batch instead of one per image.
        encoded = [index for index, item in enumerate(self.items) if item.dim() == 1]
        packed = (torch.cat([self.items[index] for index in encoded]) if encoded
                  else torch.empty(0, dtype=torch.uint8))
        return {"packed": packed, "lengths": [self.items[index].numel() for index in encoded],
                "encoded": encoded, "paths": self.paths, "image_size": self.image_size,
                "orientations": self.orientations,
                "decoded": {index: item for index, item in enumerate(self.items)
                            if item.dim() != 1}}

    def __setstate__(self, state: dict) -> None:
        self.paths, self.image_size = state["paths"], state["image_size"]
        self.orientations = state["orientations"]
        self.items = [None] * len(self.paths)
        for index, data in zip(state["encoded"], torch.split(state["packed"], state["lengths"])):
            self.items[index] = data
        for index, image in state["decoded"].items():
            self.items[index] = image

    @classmethod
    def concat(cls, batches: Sequence[EncodedBatch]) -> EncodedBatch:
        if not batches:
            raise ValueError("no batch to concatenate")
        return cls([item for batch in batches for item in batch.items],
                   [path for batch in batches for path in batch.paths], batches[0].image_size,
                   [orientation for batch in batches for orientation in batch.orientations])

    def decode(self, device: str | torch.device) -> torch.Tensor:
        """All images, upright, as one uint8 (N,3,H,W) tensor on ``device``, in batch order."""
        device = torch.device(device)
        images: list[torch.Tensor | None] = [None] * len(self.items)
        encoded = [index for index, item in enumerate(self.items) if item.dim() == 1]
        if encoded:
            try:
                decoded = decode_jpeg([self.items[index] for index in encoded],
                                      mode=ImageReadMode.RGB, device=device)
            except RuntimeError:  # one bad file fails the whole call: find it
                decoded = [self._decode_one(index, device) for index in encoded]
            for index, image in zip(encoded, decoded):
                images[index] = orient_tensor(image, self.orientations[index])
        for index, item in enumerate(self.items):
            if images[index] is None:
                images[index] = item.to(device, non_blocking=True)
        return self._resize_and_stack(images)

    def _decode_one(self, index: int, device: torch.device) -> torch.Tensor:
        data = self.items[index]
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        except RuntimeError as device_error:
            from PIL import Image, UnidentifiedImageError

            try:  # e.g. CMYK JPEGs, which nvjpeg may refuse
                with Image.open(io.BytesIO(data.numpy().tobytes())) as image:
                    return TF.pil_to_tensor(image.convert("RGB")).to(device)
            except (OSError, UnidentifiedImageError, ValueError) as error:
                raise BadImageError(
                    f"{self.paths[index]}: cannot decode JPEG ({device_error}; Pillow: {error}). "
                    "Find such files with `vpr data check`, or decode in the workers "
                    "(decode='worker')"
                ) from error

    def _resize_and_stack(self, images: list[torch.Tensor]) -> torch.Tensor:
        if self.image_size is None:
            shapes = {tuple(image.shape) for image in images}
            if len(shapes) > 1:
                raise ValueError(
                    f"images of different sizes in one batch ({sorted(shapes)[:3]}...), e.g. "
                    f"{self.paths[0]}; set image_size to resize them to one size")
            return torch.stack(images)
        size = list(self.image_size)
        out = torch.empty((len(images), 3, *size), dtype=torch.uint8, device=images[0].device)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            by_shape.setdefault(tuple(image.shape), []).append(index)
        for shape, indices in by_shape.items():  # one resize call per distinct size
            group = torch.stack([images[index] for index in indices])
            if list(shape[-2:]) != size:
                group = TF.resize(group, size, antialias=True)
            out[indices] = group
        return out


class EncodedReader:
    """``path -> EncodedBatch`` of one image, for ``--decode device``; picklable.

    A JPEG is checked (header and end marker, as `vpr.inputs.decode.read_uint8` does) and read
    as bytes, with its EXIF orientation; any other format is decoded and resized here by
    `UInt8Reader`.

    Raises:
        BadImageError: the file cannot be read as an image; the message names it.
    """

    def __init__(self, image_size: tuple[int, int] | None = None) -> None:
        self.image_size = tuple(image_size) if image_size else None
        self.fallback = UInt8Reader(self.image_size)

    def __call__(self, path: str | Path) -> EncodedBatch:
        header = read_image_header(path)
        if header.problem:
            raise BadImageError(f"{path}: cannot read image ({header.problem})")
        data = read_file(str(path))
        if bytes(data[:3].tolist()) != JPEG_START:  # decoded (and turned upright) here
            return EncodedBatch([self.fallback(path)], [path], self.image_size)
        return EncodedBatch([data], [path], self.image_size, [header.orientation])


def stack_images(images: Sequence[torch.Tensor | EncodedBatch]) -> torch.Tensor | EncodedBatch:
    """``torch.stack`` of (3,H,W) images, or one `EncodedBatch` of encoded ones."""
    if images and isinstance(images[0], EncodedBatch):
        return EncodedBatch.concat(images)
    return torch.stack(list(images))


def cat_images(batches: Sequence[torch.Tensor | EncodedBatch]) -> torch.Tensor | EncodedBatch:
    """``torch.cat`` of image batches, or one `EncodedBatch` of encoded ones."""
    if batches and isinstance(batches[0], EncodedBatch):
        return EncodedBatch.concat(batches)
    return torch.cat(list(batches))


def collate_indexed(batch: list[tuple[torch.Tensor | EncodedBatch, int]]):
    """Collates ``(image, index)`` items (`RetrievalSet`, `ImageFolderDataset`) of either kind."""
    if batch and isinstance(batch[0][0], EncodedBatch):
        return (EncodedBatch.concat([image for image, _ in batch]),
                torch.tensor([index for _, index in batch]))
    return default_collate(batch)


def to_device(images: torch.Tensor | EncodedBatch, device: str | torch.device) -> torch.Tensor:
    """A batch of images on ``device``: decoded there if still encoded."""
    if isinstance(images, EncodedBatch):
        return images.decode(device)
    return images.to(device, non_blocking=True)
