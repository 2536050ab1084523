"""Nordland (the Patch-NetVLAD split) with positives as a window of frames, four protocols.

Raw layout (as gmberton/VPR-datasets-downloader ``download_nordland.py`` fetches it from the
Patch-NetVLAD authors: ``summer.tar.gz`` unpacked into RAW, ``winter.tar.gz`` unpacked into
``RAW/winter``, and ``cleanImageNames.txt``)::

    RAW/summer/*.png            one frame per file, file names sort in frame order
    RAW/winter/*.png            (also found one level deeper: RAW/winter/winter/*.png)
    RAW/cleanImageNames.txt     the frames kept (tunnels and stops removed), one a line

The kept frames of each season are numbered in name order, and frame i of one season shows
the place of frame i of the other. Papers differ in the window and in which season is the
database, so each choice is its own protocol (`PROTOCOLS`):

* ``nordland``: summer database, winter queries, +-10 frames (Patch-NetVLAD; the
  downloader's README and its 25 m stand-in).
* ``nordland_2frames`` / ``nordland_1frame``: the same images, +-2 / +-1 frames (the
  tolerances VPR-Bench discusses).
* ``nordland_swapped``: winter database, summer queries, +-10 frames (the orientation of
  VPR-Bench, BoQ and SALAD that the downloader's header notes; their image subset differs).

The downloader's own output is accepted too: ``images/test/database`` (summer) and
``images/test/queries`` (winter) named ``@0@<north>@@@@@<frame>@...``, the frame number in the
pano_id field; the frames are then read from the names.

The window is written to ``ground_truth.json``. The @-names still carry a position (east 0,
north = frame x 25/(window + 0.5) m) so that a 25 m threshold gives the same window should
the ground truth file be lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vpr.data.geotag import GeoTag, parse_filename
from vpr.data.images import list_images
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item, require_file
from vpr.datatools.convert.prepared import prepared_root

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
POSITIVE_RADIUS_METRES = 25.0


@dataclass(frozen=True)
class NordlandProtocol:
    """Which season is the database and how many frames either side are positives."""

    frame_window: int
    database_season: str = "summer"
    query_season: str = "winter"


PROTOCOLS: dict[str, NordlandProtocol] = {
    "nordland": NordlandProtocol(10),
    "nordland_2frames": NordlandProtocol(2),
    "nordland_1frame": NordlandProtocol(1),
    "nordland_swapped": NordlandProtocol(10, database_season="winter", query_season="summer"),
}


def metres_per_frame(frame_window: int) -> float:
    """Spacing that puts exactly +-``frame_window`` frames within 25 m."""
    return POSITIVE_RADIUS_METRES / (frame_window + 0.5)


def _season_folder(raw: Path, season: str) -> Path:
    # The downloader unpacks winter.tar.gz *into* RAW/winter: accept one nested level.
    for folder in (raw / season, raw / season / season):
        if folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
            return folder
    raise ConvertError(f"{raw / season}: no frames found; expected the Nordland {season} images "
                       f"({season}.tar.gz unpacked)")


def _frames(folder: Path, kept: set[str]) -> list[Path]:
    frames = sorted(path for path in folder.iterdir()
                    if path.suffix.lower() in IMAGE_SUFFIXES and path.name in kept)
    if not frames:
        raise ConvertError(f"{folder}: none of the frames listed in cleanImageNames.txt")
    return frames


def _items(frames: list[Path], season: str, spacing: float) -> list[Item]:
    # An @-named frame of the downloader keeps its frame number as the pano_id.
    return [Item(path, GeoTag(utm_east=0.0, utm_north=index * spacing,
                              pano_id=(parse_filename(path).pano_id if path.name.startswith("@")
                                       else path.stem),
                              tile_num=str(index), note=season))
            for index, path in enumerate(frames)]


def _formatted_frames(folder: Path) -> list[Path]:
    """The downloader's @-format frames of one season, in frame order (pano_id = frame)."""
    frames = {}
    for path in list_images(folder):
        frame = parse_filename(path).pano_id
        if not frame.isdigit():
            raise ConvertError(f"{path}: expected the frame number in the pano_id field, as "
                               "download_nordland.py names the frames")
        frames[int(frame)] = path
    if sorted(frames) != list(range(len(frames))):
        raise ConvertError(f"{folder}: the frame numbers are not 0..{len(frames) - 1}")
    return [frames[index] for index in range(len(frames))]


def _season_frames(raw: Path, season: str) -> list[Path]:
    """The kept frames of ``season``, in order, from the raw files or the @-format."""
    clean = raw / "cleanImageNames.txt"
    formatted = prepared_root(raw, "queries")
    if not clean.is_file() and formatted is not None:
        root, database_folder = formatted
        # download_nordland.py: summer is the database, winter the queries.
        return _formatted_frames(root / (database_folder if season == "summer" else "queries"))
    names = require_file(clean, "the list of kept Nordland frames (cleanImageNames.txt)")
    kept = {line.strip() for line in names.read_text().splitlines() if line.strip()}
    return _frames(_season_folder(raw, season), kept)


def nordland_plan(raw: Path, protocol: str = "nordland") -> ConversionPlan:
    """The plan of one Nordland protocol (a key of `PROTOCOLS`)."""
    if protocol not in PROTOCOLS:
        raise ConvertError(f"unknown Nordland protocol {protocol!r}; valid: "
                           f"{', '.join(PROTOCOLS)}")
    setting = PROTOCOLS[protocol]
    spacing = metres_per_frame(setting.frame_window)
    database = _items(_season_frames(raw, setting.database_season), setting.database_season,
                      spacing)
    queries = _items(_season_frames(raw, setting.query_season), setting.query_season, spacing)
    if len(database) != len(queries):
        raise ConvertError(f"{raw}: {len(database)} {setting.database_season} and "
                           f"{len(queries)} {setting.query_season} frames kept; Nordland pairs "
                           "them one to one")
    window = setting.frame_window
    positives = [list(range(max(0, i - window), min(len(database), i + window + 1)))
                 for i in range(len(queries))]
    return ConversionPlan(
        protocol=protocol, database=database, queries=queries,
        rule=f"frames within +-{window} ({setting.database_season} database, "
             f"{setting.query_season} queries)",
        positive_dist_threshold=None, positives=positives)
