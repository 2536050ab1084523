"""A test set's own positives: ``ground_truth.json`` beside ``database/`` and ``queries/``.

Most benchmarks define positives by distance (25 m of UTM east/north), which the @-names
carry. Some do not: Nordland's positives are a window of frames, MSLS-val-740's are the list
published with MixVPR/SALAD. Their converters write the positives of each query into
``ground_truth.json``, keyed by file name so that the file survives a re-listing::

    {"protocol": "nordland", "rule": "frames within +-10",
     "positives": {"<query file name>": ["<database file name>", ...], ...}}

`RetrievalSet` reads it when present and then ignores distances for positives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GROUND_TRUTH_FILE = "ground_truth.json"


def read_ground_truth(root: str | Path) -> dict | None:
    """The parsed ``ground_truth.json`` of a test set folder, or None when it has none.

    Raises:
        ValueError: the file is not JSON or lacks a ``positives`` mapping.
    """
    path = Path(root) / GROUND_TRUTH_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("positives"), dict):
        raise ValueError(
            f"{path}: expected {{\"positives\": {{query name: [database names]}}}}"
        )
    return data


def positives_from_ground_truth(
    ground_truth: dict, query_paths: list[Path], database_paths: list[Path], source: str = ""
) -> list[np.ndarray]:
    """For each query, the sorted database indices its ground truth lists.

    Database names listed but absent (e.g. left out as unreadable) are ignored; a query
    missing from the file has no positive.

    Raises:
        ValueError: the file names a query that is not in the folder (another dataset's file).
    """
    index_of = {path.name: index for index, path in enumerate(database_paths)}
    query_names = {path.name for path in query_paths}
    unknown = [name for name in ground_truth["positives"] if name not in query_names]
    if unknown:
        raise ValueError(
            f"{source}/{GROUND_TRUTH_FILE}: {len(unknown)} queries it lists are not in "
            f"queries/ (e.g. {unknown[0]!r}); was the folder changed after conversion?"
        )
    positives = []
    for path in query_paths:
        names = ground_truth["positives"].get(path.name, [])
        positives.append(np.array(sorted(index_of[name] for name in names if name in index_of),
                                  dtype=np.int64))
    return positives
