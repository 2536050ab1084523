"""Test sets already distributed in the @-format: validated, then linked into place.

gmberton/VPR-datasets-downloader formats St Lucia, SVOX, AmsterTime, Eynsham, SPED, Nordland
and Tokyo 24/7 into ``<dataset>/images/<split>/{database,queries}/`` with @-names; SF-XL
(``processed/test/``) uses the same names. Some folders have other names upstream:

* the database is ``gallery/`` in SVOX (``svox/images/test/gallery``) and in the downloader's
  St Lucia script (``images/test/gallery``);
* SVOX has one query folder per condition (``queries_night``, ``queries_overcast``,
  ``queries_rain``, ``queries_snow``, ``queries_sun``);
* SF-XL has ``queries_v1`` (1,000), ``queries_v2`` (598), ``queries_night`` (466) and
  ``queries_occlusion`` (76) beside one ``database``.

RAW may be the split folder itself, ``RAW/images/test``, ``RAW/test`` or
``RAW/processed/test``. Every name is parsed (a bad one stops the conversion); positives:
25 m.
"""

from __future__ import annotations

from pathlib import Path

from vpr.data.geotag import parse_filename
from vpr.data.images import list_images
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item

DATABASE_FOLDERS = ("database", "gallery")


def prepared_root(raw: Path, queries_folder: str) -> tuple[Path, str] | None:
    """(the split folder, its database folder name) holding ``queries_folder``, or None."""
    for candidate in (raw, raw / "images" / "test", raw / "test", raw / "processed" / "test"):
        for database in DATABASE_FOLDERS:
            if (candidate / database).is_dir() and (candidate / queries_folder).is_dir():
                return candidate, database
    return None


def prepared_plan(raw: Path, protocol: str, queries_folder: str = "queries") -> ConversionPlan:
    """Links an @-format test set whose queries are in ``queries_folder``."""
    found = prepared_root(raw, queries_folder)
    if found is None:
        raise ConvertError(f"{raw}: no database/ (or gallery/) and {queries_folder}/ folders "
                           "found (looked in RAW, RAW/images/test, RAW/test and "
                           "RAW/processed/test); expected the VPR-datasets-downloader layout")
    root, database_folder = found
    database = [Item(path, parse_filename(path)) for path in list_images(root / database_folder)]
    queries = [Item(path, parse_filename(path)) for path in list_images(root / queries_folder)]
    return ConversionPlan(protocol=protocol, database=database, queries=queries, rule="25 m",
                          positive_dist_threshold=25.0)
