"""Nordland (summer database, winter queries) with positives as a window of frames.

Raw layout (the Patch-NetVLAD split, as VPR-datasets-downloader fetches it)::

    RAW/summer/*.png            one frame per file, file names sort in frame order
    RAW/winter/*.png
    RAW/cleanImageNames.txt     the frames kept (tunnels and stops removed), one a line

The kept frames of each season are numbered in name order; query frame i matches database
frames i-10 .. i+10 (``nordland``, as Patch-NetVLAD and the downloader's README). The
window is written to ``ground_truth.json``. The @-names still carry a position (east 0,
north = frame x 25/10.5 m) so that a 25 m threshold gives the same +-10 frames should the
ground truth file be lost.
"""

from __future__ import annotations

from pathlib import Path

from vpr.data.geotag import GeoTag
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item, require_dir, require_file

FRAME_WINDOW = 10
METRES_PER_FRAME = 25.0 / (FRAME_WINDOW + 0.5)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _frames(folder: Path, kept: set[str]) -> list[Path]:
    require_dir(folder, "one Nordland season's frames")
    frames = sorted(path for path in folder.iterdir()
                    if path.suffix.lower() in IMAGE_SUFFIXES and path.name in kept)
    if not frames:
        raise ConvertError(f"{folder}: none of the frames listed in cleanImageNames.txt")
    return frames


def _items(frames: list[Path], season: str) -> list[Item]:
    return [Item(path, GeoTag(utm_east=0.0, utm_north=index * METRES_PER_FRAME,
                              pano_id=path.stem, tile_num=str(index), note=season))
            for index, path in enumerate(frames)]


def nordland_plan(raw: Path, protocol: str = "nordland",
                  frame_window: int = FRAME_WINDOW) -> ConversionPlan:
    """Summer frames as database, winter frames as queries, +-``frame_window`` positives."""
    names = require_file(raw / "cleanImageNames.txt",
                         "the list of kept Nordland frames (cleanImageNames.txt)")
    kept = {line.strip() for line in names.read_text().splitlines() if line.strip()}
    database = _items(_frames(raw / "summer", kept), "summer")
    queries = _items(_frames(raw / "winter", kept), "winter")
    if len(database) != len(queries):
        raise ConvertError(f"{raw}: {len(database)} summer and {len(queries)} winter frames "
                           "kept; Nordland pairs them one to one")
    positives = [list(range(max(0, i - frame_window), min(len(database), i + frame_window + 1)))
                 for i in range(len(queries))]
    return ConversionPlan(protocol=protocol, database=database, queries=queries,
                          rule=f"frames within +-{frame_window}", positive_dist_threshold=None,
                          positives=positives)
