"""Mapillary Street-Level Sequences (MSLS) validation, under its two common protocols.

Raw layout (the MSLS download, unpacked)::

    RAW/train_val/<city>/{database,query}/raw.csv            key, lon, lat, ..., pano
    RAW/train_val/<city>/{database,query}/postprocessed.csv  key, easting, northing, ...,
                                                              night, view_direction
    RAW/train_val/<city>/{database,query}/seq_info.csv
    RAW/train_val/<city>/{database,query}/images/<key>.jpg

The validation cities are ``cph`` and ``sf``. Two protocols:

* ``msls_val_full``: every non-panorama database and query image of cph and sf; positives
  within 25 m (what the VPR-datasets-downloader formatting gives, about 11k queries).
* ``msls_val_740``: the 740 queries of MixVPR/SALAD/SelaVPR, given by the four lists shipped
  with the GSV-Cities repository (``datasets/msls_val/``): ``msls_val_dbImages.npy`` and
  ``msls_val_qImages.npy`` (paths relative to RAW), ``msls_val_qIdx.npy`` (the queries
  kept) and ``msls_val_pIdx.npy`` (their positives, database indices). Put the four files
  in ``RAW/`` or ``RAW/msls_val/``. Positives are that list, written to
  ``ground_truth.json``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from vpr.datatools.convert.coordinates import tag_from_latlon
from vpr.datatools.convert.plan import (
    ConversionPlan,
    ConvertError,
    Item,
    first_existing,
    require_file,
)

VAL_CITIES = ("cph", "sf")
LIST_FILES = ("msls_val_dbImages.npy", "msls_val_qImages.npy", "msls_val_qIdx.npy",
              "msls_val_pIdx.npy")


def _city_root(raw: Path) -> Path:
    return raw / "train_val" if (raw / "train_val").is_dir() else raw


def _read_rows(path: Path, needed: tuple[str, ...]) -> dict[str, dict[str, str]]:
    require_file(path, "an MSLS csv with a header row")
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        missing = [column for column in needed if column not in (reader.fieldnames or [])]
        if missing:
            raise ConvertError(f"{path}: no column {', '.join(missing)}; expected the MSLS "
                               f"columns {', '.join(needed)}")
        return {row["key"]: row for row in reader}


def _folder_items(folder: Path, city: str) -> dict[str, tuple[Item, bool]]:
    """{image path relative to the city root's parent: (item, is_panorama)} of one folder."""
    raw_rows = _read_rows(folder / "raw.csv", ("key", "lon", "lat"))
    processed = folder / "postprocessed.csv"
    post_rows = _read_rows(processed, ("key",)) if processed.is_file() else {}
    items = {}
    for key, row in raw_rows.items():
        post = post_rows.get(key, {})
        night = str(post.get("night", "")).strip().lower() == "true"
        view = str(post.get("view_direction", "")).strip().lower()
        note = "_".join(part for part in ("night" if night else "day", view, city) if part)
        try:
            latitude, longitude = float(row["lat"]), float(row["lon"])
        except ValueError:
            raise ConvertError(f"{folder / 'raw.csv'}: row {key} has no numeric lat/lon") from None
        tag = tag_from_latlon(latitude, longitude, str(folder / "raw.csv"), pano_id=key,
                              timestamp=str(row.get("captured_at", "")).replace("-", ""),
                              note=note)
        panorama = str(row.get("pano", "")).strip().lower() == "true"
        items[f"{city}/{folder.name}/images/{key}.jpg"] = (
            Item(folder / "images" / f"{key}.jpg", tag), panorama)
    return items


def _val_items(raw: Path) -> dict[str, dict[str, tuple[Item, bool]]]:
    cities = _city_root(raw)
    found: dict[str, dict[str, tuple[Item, bool]]] = {"database": {}, "query": {}}
    for city in VAL_CITIES:
        for part in ("database", "query"):
            folder = cities / city / part
            if not folder.is_dir():
                raise ConvertError(f"{folder}: folder not found; expected the MSLS validation "
                                   f"city {city} (train_val/{city}/{part}/ with raw.csv)")
            found[part].update(_folder_items(folder, city))
    return found


def msls_val_full_plan(raw: Path, protocol: str = "msls_val_full") -> ConversionPlan:
    """Every non-panorama image of the validation cities; positives within 25 m."""
    found = _val_items(raw)
    database = [item for item, pano in found["database"].values() if not pano]
    queries = [item for item, pano in found["query"].values() if not pano]
    skipped = sum(pano for part in found.values() for _, pano in part.values())
    return ConversionPlan(protocol=protocol, database=database, queries=queries, rule="25 m",
                          positive_dist_threshold=25.0,
                          notes=[f"{skipped} panoramas left out"] if skipped else [])


def _relative_key(path: str) -> str:
    # The lists hold e.g. 'train_val/cph/database/images/<key>.jpg'.
    parts = Path(path).parts
    return "/".join(parts[parts.index("train_val") + 1:] if "train_val" in parts else parts)


def msls_val_740_plan(raw: Path, protocol: str = "msls_val_740") -> ConversionPlan:
    """The 740-query protocol of MixVPR/SALAD, from the GSV-Cities lists."""
    lists = {}
    for name in LIST_FILES:
        path = first_existing([raw / name, raw / "msls_val" / name],
                              f"{name} (from the GSV-Cities repository, datasets/msls_val/)")
        lists[name] = np.load(path, allow_pickle=True)
    database_list = [str(path) for path in lists["msls_val_dbImages.npy"]]
    query_list = [str(path) for path in lists["msls_val_qImages.npy"]]
    kept = [int(index) for index in lists["msls_val_qIdx.npy"]]
    positives_list = list(lists["msls_val_pIdx.npy"])
    if len(positives_list) == len(kept):
        positives = [[int(i) for i in np.ravel(p)] for p in positives_list]
    elif len(positives_list) == len(query_list):
        positives = [[int(i) for i in np.ravel(positives_list[q])] for q in kept]
    else:
        raise ConvertError(
            f"msls_val_pIdx.npy has {len(positives_list)} entries; expected one per kept query "
            f"({len(kept)}) or per query image ({len(query_list)})"
        )
    found = _val_items(raw)
    items = {**found["database"], **found["query"]}

    def lookup(path: str) -> Item:
        key = _relative_key(path)
        if key not in items:
            raise ConvertError(f"{path}: listed by the MSLS-val lists but not in the raw.csv "
                               f"files under {_city_root(raw)}")
        return items[key][0]

    database = [lookup(path) for path in database_list]
    queries = [lookup(query_list[index]) for index in kept]
    if any(index >= len(database) for found_ in positives for index in found_):
        raise ConvertError("msls_val_pIdx.npy names a database index beyond msls_val_dbImages")
    return ConversionPlan(protocol=protocol, database=database, queries=queries,
                          rule="the msls_val_pIdx.npy list (GSV-Cities / MixVPR)",
                          positive_dist_threshold=None, positives=positives)
