"""Eynsham from its raw release (zenodo record 1243106), or from the downloader's @-format.

Raw layout (``Eynsham.zip`` unpacked, as gmberton/VPR-datasets-downloader
``download_eynsham.py`` reads it)::

    RAW/Eynsham/Images/grab_<unix time>.ppm     greyscale tiles, 5 per panorama
    RAW/Eynsham/Route_map/Eynsham.kml           the route: <coordinates>lon,lat,alt ...

As in the downloader: the coordinate list is the text between the first ``<coordinates>``
and ``</coordinates>``, split on single spaces, without its last two entries; the images,
sorted by name, without their first five, are taken five per coordinate (tile 0..4); the
first 4,787 panoramas (the first loop) are the database, the others (the second loop) the
queries. The .ppm tiles are re-encoded as .png (the readers do not open .ppm). Positives:
25 m.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from vpr.datatools.convert.coordinates import tag_from_latlon
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item, require_file
from vpr.datatools.convert.prepared import prepared_plan, prepared_root

DATABASE_PANORAMAS = 4787
TILES_PER_PANORAMA = 5
SKIPPED_IMAGES = 5


def _raw_root(raw: Path) -> Path | None:
    for candidate in (raw / "Eynsham", raw):
        if (candidate / "Images").is_dir() and (candidate / "Route_map").is_dir():
            return candidate
    return None


def route_coordinates(kml: Path) -> list[tuple[float, float]]:
    """(longitude, latitude) of each panorama, read from the route's KML."""
    text = kml.read_text(errors="replace")
    if "<coordinates>" not in text or "</coordinates>" not in text:
        raise ConvertError(f"{kml}: no <coordinates> element; expected the Eynsham route")
    inside = text.split("<coordinates>", 1)[1].split("</coordinates>", 1)[0]
    points = []
    for entry in inside.split(" ")[:-2]:
        fields = entry.split(",")
        try:
            points.append((float(fields[0]), float(fields[1])))
        except (IndexError, ValueError):
            raise ConvertError(f"{kml}: coordinate {entry!r} is not 'lon,lat[,alt]'") from None
    return points


def _timestamp(path: Path) -> str:
    seconds = path.stem.split("grab_")[-1]
    if not seconds.isdigit():
        return ""
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y%m%d_%H%M%S")


def eynsham_plan(raw: Path, protocol: str = "eynsham") -> ConversionPlan:
    """The Eynsham test set from the raw release (or from the @-format)."""
    root = _raw_root(raw)
    if root is None:
        if prepared_root(raw, "queries") is not None:
            return prepared_plan(raw, protocol)
        raise ConvertError(f"{raw}: neither Eynsham/Images + Eynsham/Route_map (the zenodo "
                           "release unpacked) nor the @-format images/test/{database,queries}")
    points = route_coordinates(require_file(root / "Route_map" / "Eynsham.kml",
                                            "the Eynsham route (Route_map/Eynsham.kml)"))
    images = sorted((root / "Images").glob("*.ppm"))[SKIPPED_IMAGES:]
    needed = len(points) * TILES_PER_PANORAMA
    if len(images) < needed:
        raise ConvertError(f"{root / 'Images'}: {len(images)} tiles after the first "
                           f"{SKIPPED_IMAGES}, the route needs {needed} ({len(points)} "
                           f"panoramas x {TILES_PER_PANORAMA})")
    database, queries = [], []
    for pano, (longitude, latitude) in enumerate(points):
        for tile in range(TILES_PER_PANORAMA):
            path = images[pano * TILES_PER_PANORAMA + tile]
            tag = tag_from_latlon(latitude, longitude, str(path), pano_id=f"{pano:04d}",
                                  tile_num=str(tile), timestamp=_timestamp(path))
            (database if pano < DATABASE_PANORAMAS else queries).append(
                Item(path, tag, re_encode_as=".png"))
    return ConversionPlan(protocol=protocol, database=database, queries=queries, rule="25 m",
                          positive_dist_threshold=25.0)
