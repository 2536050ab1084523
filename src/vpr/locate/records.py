"""The rows of an index's images: resolved paths and the coordinates of their @-names."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vpr.data.geotag import parse_filename
from vpr.data.images import list_images


def _image_paths(images: str | Path | Sequence[str | Path]) -> list[Path]:
    """A folder (searched recursively), one image, or a list of images, as resolved paths."""
    if isinstance(images, (str, Path)):
        images = Path(images)
        paths = list_images(images) if images.is_dir() else [images]
    else:
        paths = [Path(path) for path in images]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image not found")
    return [path.resolve() for path in paths]


def _latlon(tag: Any) -> tuple[float | None, float | None]:
    """The tag's latitude/longitude, from its fields or else from its UTM zone."""
    if tag.latitude is not None and tag.longitude is not None:
        return tag.latitude, tag.longitude
    if tag.utm_zone_number is None or not tag.utm_zone_letter:
        return None, None
    import utm

    try:
        latitude, longitude = utm.to_latlon(tag.utm_east, tag.utm_north, tag.utm_zone_number,
                                            tag.utm_zone_letter)
    except (utm.error.OutOfRangeError, ValueError):
        # Made-up coordinates (tests, some synthetic sets): no lat/lon rather than a crash.
        return None, None
    return float(latitude), float(longitude)


def image_records(paths: Sequence[Path]) -> dict[str, list[Any]]:
    """The coordinates of each image from its @-name, as the columns of the store.

    Raises:
        GeoTagError: an image name without UTM coordinates.
    """
    records: dict[str, list[Any]] = {key: [] for key in (
        "paths", "utm_east", "utm_north", "utm_zone_number", "utm_zone_letter", "latitude",
        "longitude")}
    for path in paths:
        tag = parse_filename(path)
        latitude, longitude = _latlon(tag)
        records["paths"].append(str(path))
        records["utm_east"].append(tag.utm_east)
        records["utm_north"].append(tag.utm_north)
        records["utm_zone_number"].append(tag.utm_zone_number)
        records["utm_zone_letter"].append(tag.utm_zone_letter)
        records["latitude"].append(latitude)
        records["longitude"].append(longitude)
    return records
