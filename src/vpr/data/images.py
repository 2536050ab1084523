"""Finding image files under a folder and opening them with errors that name the file."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


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


def check_image_header(path: str | Path) -> str | None:
    """Reads only the header of an image; returns why it is unusable, or None if it looks fine.

    Catches empty files, files that are not images (whatever their extension) and
    decompression bombs without decoding the pixels.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                image_format = image.format
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, SyntaxError, ValueError) as error:
        return str(error) or type(error).__name__
    if width == 0 or height == 0:
        return "image has no pixels"
    # A cut-off file keeps its header: look for the end marker instead of decoding it all.
    end_marker = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}.get(image_format)
    if end_marker is not None:
        with open(path, "rb") as file:
            file.seek(0, 2)
            file.seek(max(0, file.tell() - 4096))
            if end_marker not in file.read():
                return f"truncated {image_format} (no end marker)"
    return None


def find_bad_images(paths: list[Path], workers: int = 8) -> dict[Path, str]:
    """Header-checks many images on a few threads; returns {path: problem} for the bad ones."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = pool.map(check_image_header, paths)
    return {path: problem for path, problem in zip(paths, problems) if problem}


def open_rgb(path: str | Path) -> Image.Image:
    """Opens an image file and converts it to RGB (grayscale, RGBA, CMYK... all accepted).

    Raises:
        BadImageError: the file is missing, truncated, empty, or not an image.
    """
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 89 and 179 megapixels: treat it as the bomb it may be.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return image.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, SyntaxError, ValueError) as error:
        raise BadImageError(f"{path}: cannot read image ({error})") from error
