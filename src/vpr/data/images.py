"""Finding image files under a folder and opening them with errors that name the file."""

from __future__ import annotations

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


def open_rgb(path: str | Path) -> Image.Image:
    """Opens an image file and converts it to RGB (grayscale, RGBA, CMYK... all accepted).

    Raises:
        BadImageError: the file is missing, truncated, empty, or not an image.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as error:
        raise BadImageError(f"{path}: cannot read image ({error})") from error
