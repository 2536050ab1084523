"""Tokyo 24/7 from the raw download (NetVLAD's ``tokyo247.mat`` and the query subset).

Raw layout::

    RAW/datasets/tokyo247.mat    dbStruct: database paths and UTM, query names and UTM
    RAW/03814/ ... RAW/03829/    database images (listed as .jpg; the tars hold .png)
    RAW/247query_subset_v2/      the 315 query images (105 places x day/sunset/night)

Query paths of the ``.mat`` are looked up under RAW, then under ``247query_subset_v2/``.
A query inside a ``day``, ``sunset`` or ``night`` folder gets that word as its note, which
`vpr test --group_rule` reads. Positives: 25 m. UTM zone 54S (Tokyo).
"""

from __future__ import annotations

from pathlib import Path

from vpr.datatools.convert.coordinates import tag_from_utm
from vpr.datatools.convert.dbstruct import read_db_struct
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item, first_existing

ZONE = (54, "S")
QUERY_FOLDER = "247query_subset_v2"
TIMES_OF_DAY = ("day", "sunset", "night")


def _database_file(raw: Path, relative: str) -> Path:
    path = raw / relative
    if not path.exists() and path.with_suffix(".png").exists():
        return path.with_suffix(".png")
    return path


def _query_file(raw: Path, relative: str) -> Path:
    for candidate in (raw / relative, raw / QUERY_FOLDER / relative,
                      raw / QUERY_FOLDER / Path(relative).name):
        if candidate.exists():
            return candidate
    return raw / QUERY_FOLDER / relative


def tokyo247_plan(raw: Path, protocol: str = "tokyo247") -> ConversionPlan:
    """The Tokyo 24/7 test set from its raw folder."""
    mat = first_existing([raw / "datasets" / "tokyo247.mat", raw / "tokyo247.mat"],
                         "tokyo247.mat (the NetVLAD Tokyo 24/7 dbStruct)")
    if not (raw / QUERY_FOLDER).is_dir():
        raise ConvertError(f"{raw / QUERY_FOLDER}: folder not found; expected the Tokyo 24/7 "
                           "query images (247query_subset_v2.zip unpacked)")
    struct = read_db_struct(mat)
    database = []
    for relative, (east, north) in zip(struct.database_images, struct.database_utm):
        source = _database_file(raw, relative)
        database.append(Item(source, tag_from_utm(east, north, *ZONE,
                                                  pano_id=Path(relative).stem)))
    queries = []
    for relative, (east, north) in zip(struct.query_images, struct.query_utm):
        source = _query_file(raw, relative)
        time_of_day = next((part for part in source.parts[:-1] if part in TIMES_OF_DAY), "")
        queries.append(Item(source, tag_from_utm(east, north, *ZONE, pano_id=source.stem,
                                                 note=time_of_day)))
    return ConversionPlan(protocol=protocol, database=database, queries=queries, rule="25 m",
                          positive_dist_threshold=25.0)
