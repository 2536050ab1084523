"""Paired test sets (SPED, AmsterTime): query i shows the place of the database image i.

Raw layouts (what gmberton/VPR-datasets-downloader unpacks before formatting):

* SPED (``download_sped.py``, ``SPEDTEST.zip`` from the VPR-Bench share):
  ``RAW/SPEDTEST/ref/*.jpg`` (database) and ``RAW/SPEDTEST/query/*.jpg``, the two images of
  a pair sharing one file name.
* AmsterTime (``download_amstertime.py``, ``data.zip`` from data.4tu.nl holding
  ``AmsterTime-v1.0.zip``): ``RAW/new/*.png`` (modern street view, database) and
  ``RAW/old/*.jpg`` (archival photos, queries), a pair sharing one file stem.

Neither has positions. As the downloader does, each pair gets its own mock position, pairs
1 km apart on a line, so 25 m finds exactly the query's own pair. A folder already in the
@-format (the downloader's output) is linked as it is.
"""

from __future__ import annotations

from pathlib import Path

from vpr.data.geotag import GeoTag
from vpr.data.images import list_images
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item
from vpr.datatools.convert.prepared import prepared_plan, prepared_root

PAIR_SPACING_METRES = 1000.0
# dataset: (folder candidates under RAW, database folder, query folder)
PAIR_LAYOUTS = {
    "sped": (("SPEDTEST", "."), "ref", "query"),
    "amstertime": ((".", "AmsterTime-v1.0"), "new", "old"),
}


def _pair_root(raw: Path, protocol: str) -> Path | None:
    candidates, database, queries = PAIR_LAYOUTS[protocol]
    for name in candidates:
        root = raw / name
        if (root / database).is_dir() and (root / queries).is_dir():
            return root
    return None


def pairs_plan(raw: Path, protocol: str) -> ConversionPlan:
    """The plan of SPED or AmsterTime from its raw pairs (or from the @-format)."""
    root = _pair_root(raw, protocol)
    if root is None:
        if prepared_root(raw, "queries") is not None:
            return prepared_plan(raw, protocol)
        _, database_folder, query_folder = PAIR_LAYOUTS[protocol]
        raise ConvertError(f"{raw}: no {database_folder}/ and {query_folder}/ folders (nor the "
                           "@-format images/test/database and queries); expected the raw "
                           f"{protocol} archive unpacked")
    _, database_folder, query_folder = PAIR_LAYOUTS[protocol]
    database_files = {path.stem: path for path in list_images(root / database_folder)}
    query_files = {path.stem: path for path in list_images(root / query_folder)}
    unpaired = sorted(set(database_files) ^ set(query_files))
    if unpaired:
        raise ConvertError(f"{root}: {len(unpaired)} images without their pair (e.g. "
                           f"{unpaired[0]!r}); {database_folder}/ and {query_folder}/ must hold "
                           "the same names")
    database, queries = [], []
    for index, stem in enumerate(sorted(database_files)):
        position = {"utm_east": index * PAIR_SPACING_METRES, "utm_north": 0.0,
                    "pano_id": stem, "tile_num": str(index)}
        database.append(Item(database_files[stem], GeoTag(**position)))
        queries.append(Item(query_files[stem], GeoTag(**position)))
    return ConversionPlan(protocol=protocol, database=database, queries=queries,
                          rule="the query's own pair (25 m, pairs 1 km apart)",
                          positive_dist_threshold=25.0)
