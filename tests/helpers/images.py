"""Small images on disk: @-named random images, plain JPEGs, EXIF with GPS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin

from vpr.data.geotag import GeoTag, format_filename

Rational = TiffImagePlugin.IFDRational


def write_image(folder: Path, east: float, north: float, note: str, seed: int,
                size: tuple[int, int] = (32, 32), extension: str = ".jpg") -> Path:
    """Writes a small random image named in the @-format; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    name = format_filename(GeoTag(utm_east=east, utm_north=north, utm_zone_number=33,
                                  utm_zone_letter="T", note=note), extension)
    path = folder / name
    Image.fromarray(pixels).save(path)
    return path


def write_photo(path: Path, seed: int = 0, exif: Image.Exif | None = None) -> Path:
    """A small random JPEG at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", **({"exif": exif} if exif else {}))
    return path


def gps_exif(latitude_dms: tuple[int, int, Rational], latitude_ref: str,
             longitude_dms: tuple[int, int, Rational], longitude_ref: str,
             taken: str | None = None) -> Image.Exif:
    """EXIF with a GPS IFD (rational degrees, minutes, seconds) and DateTimeOriginal."""
    exif = Image.Exif()
    exif[0x8825] = {
        1: latitude_ref, 2: tuple(Rational(value) if isinstance(value, int) else value
                                  for value in latitude_dms),
        3: longitude_ref, 4: tuple(Rational(value) if isinstance(value, int) else value
                                   for value in longitude_dms),
    }
    if taken:
        exif[0x8769] = {0x9003: taken}
    return exif
