"""Test sets defined by published file lists: the VPR-Bench Nordland and SPED of MixVPR/SALAD.

MixVPR, SALAD and BoQ evaluate Nordland and SPED on the VPR-Bench copies of the datasets
(``ref/`` and ``query/`` folders, from the VPR-Bench share on surfdrive) with three lists
shipped in the GSV-Cities repository (``datasets/Nordland/``, ``datasets/SPED/``; the
loaders ``dataloaders/val/NordlandDataset.py`` and ``SPEDDataset.py`` of amaralibey/gsv-cities
and serizba/salad)::

    <Name>_dbImages.npy   database image paths, relative to the dataset folder (ref/...)
    <Name>_qImages.npy    query image paths (query/...)
    <Name>_gt.npy         per query, the database indices that are correct (object array)

RAW is the dataset folder (holding ``ref/`` and ``query/``); the three lists may sit in RAW
or in ``RAW/<Name>/``. Positives are the list, written to ``ground_truth.json``. The images
carry no position: each database image gets a mock one 1 km from the next and each query the
position of its first listed positive (far from everything when it has none), so that a 25 m
threshold finds the first positive should the ground truth file be lost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vpr.data.geotag import GeoTag
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item, first_existing

SPACING_METRES = 1000.0


def _load_list(raw: Path, stem: str, suffix: str) -> np.ndarray:
    name = f"{stem}_{suffix}.npy"
    path = first_existing([raw / name, raw / stem / name],
                          f"{name} (from the GSV-Cities repository, datasets/{stem}/)")
    try:
        return np.load(path, allow_pickle=suffix == "gt")
    except (ValueError, OSError) as error:
        raise ConvertError(f"{path}: not a readable .npy list ({error})") from None


def published_list_plan(raw: Path, protocol: str, stem: str) -> ConversionPlan:
    """The plan of a protocol whose images and positives are the ``<stem>_*.npy`` lists."""
    database_paths = [raw / str(path) for path in _load_list(raw, stem, "dbImages")]
    query_paths = [raw / str(path) for path in _load_list(raw, stem, "qImages")]
    ground_truth = list(_load_list(raw, stem, "gt"))
    if len(ground_truth) != len(query_paths):
        raise ConvertError(f"{stem}_gt.npy has {len(ground_truth)} entries for "
                           f"{len(query_paths)} queries in {stem}_qImages.npy")
    positives = [sorted(int(index) for index in np.ravel(found)) for found in ground_truth]
    if any(not 0 <= index < len(database_paths) for found in positives for index in found):
        raise ConvertError(f"{stem}_gt.npy names a database index beyond {stem}_dbImages.npy")
    database = [Item(path, GeoTag(utm_east=index * SPACING_METRES, utm_north=0.0,
                                  pano_id=path.stem, tile_num=str(index), note="ref"))
                for index, path in enumerate(database_paths)]
    far = -SPACING_METRES * (len(database_paths) + 1)
    queries = [Item(path, GeoTag(utm_east=found[0] * SPACING_METRES if found else far,
                                 utm_north=0.0, pano_id=path.stem, tile_num=str(index),
                                 note="query"))
               for index, (path, found) in enumerate(zip(query_paths, positives))]
    return ConversionPlan(protocol=protocol, database=database, queries=queries,
                          rule=f"the {stem}_gt.npy list (GSV-Cities / MixVPR / SALAD)",
                          positive_dist_threshold=None, positives=positives)
