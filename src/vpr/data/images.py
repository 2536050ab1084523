"""Finding image files under a folder and opening them with errors that name the file.

Every reader turns a file into the picture as it is meant to be seen: a phone stores a photo
taken sideways as it came off the sensor, with an EXIF Orientation tag (1-8) saying how to
turn it, and browsers and viewers obey the tag. `image_orientation` reads it once, from the
header, for every reader (this module's `open_rgb`, `vpr.inputs.decode`,
`vpr.inputs.device_decode`, the service's upload decoder), so one file gives the same pixels
whichever reads it.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

ORIENTATION_TAG = 0x0112  # EXIF Orientation
# What turns the stored pixels upright, for each Orientation (1, or no tag: nothing), as
# EXIF defines it and `PIL.ImageOps.exif_transpose` applies it.
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class BadImageError(ValueError):
    """An image file that cannot be read as an RGB picture."""


def list_images(folder: str | Path) -> list[Path]:
    """Returns every jpg/jpeg/png under ``folder`` (recursively), sorted for determinism.

    Raises:
        FileNotFoundError: the folder does not exist.
        NotADirectoryError: the path is a file.
        ValueError: the folder holds no image.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: expected a folder of images, got a file")
    paths = sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
    )
    if not paths:
        raise ValueError(
            f"{folder}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)} recursively)"
        )
    return paths


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says: why it is unusable (None: it looks fine), and how to turn
    its pixels upright (EXIF Orientation, 1 when there is nothing to do)."""

    problem: str | None
    orientation: int = 1


def image_orientation(image: Image.Image) -> int:
    """The EXIF Orientation (1-8) of an opened image, from its header; 1 when absent or invalid.

    Only what opening the file has read is looked at (`Image.Image.getexif`, not a format's
    override): a PNG's ``eXIf`` chunk after its pixels would need them decoded to be found,
    which would turn every header check into a full decode; so it is ignored, by every reader
    alike. A mangled EXIF block counts as no tag rather than making the image unreadable.
    """
    try:
        value = Image.Image.getexif(image).get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on a mangled EXIF block
        return 1
    return value if value in ORIENTATION_TRANSPOSE else 1


def oriented_size(image: Image.Image, orientation: int | None = None) -> tuple[int, int]:
    """(width, height) of an opened image as displayed, once its EXIF orientation is applied."""
    orientation = image_orientation(image) if orientation is None else orientation
    width, height = image.size
    return (height, width) if orientation >= 5 else (width, height)


def apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` turned upright for its EXIF ``orientation`` (itself when 1)."""
    method = ORIENTATION_TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


def check_image_header(path: str | Path) -> str | None:
    """Reads only the header of an image; returns why it is unusable, or None if it looks fine.

    Catches empty files, files that are not images (whatever their extension) and
    decompression bombs without decoding the pixels.
    """
    return read_image_header(path).problem


def read_image_header(path: str | Path) -> ImageHeader:
    """`check_image_header`'s checks, and the image's EXIF orientation, without decoding it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                image_format = image.format
                orientation = image_orientation(image)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, SyntaxError, ValueError) as error:
        return ImageHeader(str(error) or type(error).__name__)
    if width == 0 or height == 0:
        return ImageHeader("image has no pixels")
    # A cut-off file keeps its header: look for the end marker instead of decoding it all.
    end_marker = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}.get(image_format)
    if end_marker is not None:
        with open(path, "rb") as file:
            file.seek(0, 2)
            file.seek(max(0, file.tell() - 4096))
            if end_marker not in file.read():
                return ImageHeader(f"truncated {image_format} (no end marker)")
    return ImageHeader(None, orientation)


def find_bad_images(paths: list[Path], workers: int = 8) -> dict[Path, str]:
    """Header-checks many images on a few threads; returns {path: problem} for the bad ones."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = pool.map(check_image_header, paths)
    return {path: problem for path, problem in zip(paths, problems) if problem}


def open_rgb(path: str | Path) -> Image.Image:
    """Opens an image file upright (its EXIF orientation applied) and converts it to RGB
    (grayscale, RGBA, CMYK... all accepted).

    Raises:
        BadImageError: the file is missing, truncated, empty, or not an image.
    """
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 89 and 179 megapixels: treat it as the bomb it may be.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                orientation = image_orientation(image)  # before load: as the header checks
                image.load()
                return apply_orientation(image.convert("RGB"), orientation)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, SyntaxError, ValueError) as error:
        raise BadImageError(f"{path}: cannot read image ({error})") from error
