"""Test sets already distributed in the @-format: validated, then linked into place.

VPR-datasets-downloader (gmberton) formats St Lucia, SVOX, AmsterTime, Eynsham, SPED and
SF-XL into ``<dataset>/images/test/{database,queries}/`` with @-names; RAW may be that
``images/test`` folder, the dataset folder above it, or any folder with ``database/`` and
``queries/`` (SVOX has one query folder per condition: ``queries_night``, ``queries_sun``...).
Every name is parsed (a bad one stops the conversion); positives: 25 m.
"""

from __future__ import annotations

from pathlib import Path

from vpr.data.geotag import parse_filename
from vpr.data.images import list_images
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item


def _test_root(raw: Path, queries_folder: str) -> Path:
    for candidate in (raw, raw / "images" / "test", raw / "test"):
        if (candidate / "database").is_dir() and (candidate / queries_folder).is_dir():
            return candidate
    raise ConvertError(f"{raw}: no database/ and {queries_folder}/ folders found (looked in "
                       "RAW, RAW/images/test and RAW/test); expected the VPR-datasets-downloader "
                       "layout")


def prepared_plan(raw: Path, protocol: str, queries_folder: str = "queries") -> ConversionPlan:
    """Links an @-format test set whose queries are in ``queries_folder``."""
    root = _test_root(raw, queries_folder)
    database = [Item(path, parse_filename(path)) for path in list_images(root / "database")]
    queries = [Item(path, parse_filename(path)) for path in list_images(root / queries_folder)]
    return ConversionPlan(protocol=protocol, database=database, queries=queries, rule="25 m",
                          positive_dist_threshold=25.0)
