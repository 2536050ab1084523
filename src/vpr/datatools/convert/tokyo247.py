"""Tokyo 24/7 from the raw download (NetVLAD's ``tokyo247.mat`` and the query subset).

Raw layout (as gmberton/VPR-datasets-downloader ``format_tokyo247.py`` expects it)::

    RAW/datasets/tokyo247.mat    dbStruct: database paths and UTM (2 x N), query names and UTM
    RAW/03814/ ... RAW/03829/    database cut-outs, from 03814.tar ... 03829.tar
    RAW/247query_subset_v2/      the 315 query images, flat: <id>.jpg with <id>.csv beside it
                                 (first fields: name, latitude, longitude)

The ``.mat`` lists database images as ``.jpg`` while the tars hold ``.png``: both are found.
Database names end in ``_012_<yaw>``; the tile number is yaw / 30 (12 cut-outs per
panorama). Queries are the ``.mat`` query list looked up in ``247query_subset_v2/`` with the
``.mat`` positions; a ``.mat`` without queries falls back to every ``.jpg`` of the folder with
the latitude/longitude of its ``.csv`` (what the downloader reads). Positives: 25 m. UTM zone
54S (Tokyo). The time of day (day, sunset, night) of each query is not written: no verified
source of it in these files was found.
"""

from __future__ import annotations

import re
from pathlib import Path

from vpr.datatools.convert.coordinates import tag_from_latlon, tag_from_utm
from vpr.datatools.convert.dbstruct import read_db_struct
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item, first_existing

ZONE = (54, "S")
QUERY_FOLDER = "247query_subset_v2"
_CUTOUT = re.compile(r"^(?P<pano>.+)_012_(?P<yaw>\d+)$")


def _database_item(raw: Path, relative: str, east: float, north: float) -> Item:
    path = raw / relative
    if not path.exists() and path.with_suffix(".png").exists():
        path = path.with_suffix(".png")
    match = _CUTOUT.match(path.stem)
    fields = ({"pano_id": match["pano"], "tile_num": str(int(match["yaw"]) // 30)} if match
              else {"pano_id": path.stem})
    return Item(path, tag_from_utm(east, north, *ZONE, **fields))


def _query_file(raw: Path, relative: str) -> Path:
    for candidate in (raw / QUERY_FOLDER / relative, raw / QUERY_FOLDER / Path(relative).name,
                      raw / relative):
        if candidate.exists():
            return candidate
    return raw / QUERY_FOLDER / Path(relative).name


def _queries_from_csv(folder: Path) -> list[Item]:
    """Every query image with the latitude/longitude of the .csv beside it."""
    items = []
    for image in sorted(folder.glob("*.jpg")):
        csv_path = image.with_suffix(".csv")
        if not csv_path.is_file():
            raise ConvertError(f"{csv_path}: not found; expected the query's position file")
        fields = csv_path.read_text().splitlines()[0].split(",") if csv_path.stat().st_size else []
        try:
            latitude, longitude = float(fields[1]), float(fields[2])
        except (IndexError, ValueError):
            raise ConvertError(f"{csv_path}: expected 'name,latitude,longitude,...' on its "
                               "first line") from None
        items.append(Item(image, tag_from_latlon(latitude, longitude, str(csv_path),
                                                 pano_id=image.stem)))
    return items


def tokyo247_plan(raw: Path, protocol: str = "tokyo247") -> ConversionPlan:
    """The Tokyo 24/7 test set from its raw folder."""
    mat = first_existing([raw / "datasets" / "tokyo247.mat", raw / "tokyo247.mat"],
                         "tokyo247.mat (the NetVLAD Tokyo 24/7 dbStruct)")
    if not (raw / QUERY_FOLDER).is_dir():
        raise ConvertError(f"{raw / QUERY_FOLDER}: folder not found; expected the Tokyo 24/7 "
                           "query images (247query_subset_v2.zip unpacked)")
    struct = read_db_struct(mat, queries_required=False)
    database = [_database_item(raw, relative, east, north)
                for relative, (east, north) in zip(struct.database_images, struct.database_utm)]
    if struct.query_images:
        queries = []
        for relative, (east, north) in zip(struct.query_images, struct.query_utm):
            source = _query_file(raw, relative)
            queries.append(Item(source, tag_from_utm(east, north, *ZONE, pano_id=source.stem)))
    else:
        queries = _queries_from_csv(raw / QUERY_FOLDER)
    return ConversionPlan(protocol=protocol, database=database, queries=queries, rule="25 m",
                          positive_dist_threshold=25.0)
