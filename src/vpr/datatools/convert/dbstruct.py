"""Reading the ``dbStruct`` ``.mat`` files of NetVLAD (Pittsburgh 30k/250k, Tokyo 24/7).

Relja Arandjelovic's NetVLAD code saves each split as a MATLAB struct ``dbStruct`` whose
fields are ``whichSet``, ``dbImageFns`` (a cell of database paths), ``utmDb`` (2 x N UTM
east/north), ``qImageFns``, ``utmQ`` (2 x Q), ``numImages``, ``numQueries``, ``posDistThr``
(25 m), ``posDistSqThr`` and ``nonTrivPosDistSqThr``; the Tokyo files add ``dbTimeStamp``
after ``utmDb`` and ``qTimeStamp`` after ``utmQ``. ``scipy.io.loadmat`` gives a (1, 1)
structured array; each cell entry is a 1-element string array.

Python loaders read the fields by position (Nanne/pytorch-NetVlad ``pittsburgh.py``: 1, 2,
3, 4; its ``tokyo247.py``: 1, 2, 4, 5 because of the time stamps, and names them ``dbImage``
and ``qImage``). Reading by name works for both layouts; both spellings are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vpr.datatools.convert.plan import ConvertError

# Each needed field and the spellings it is found under.
FIELD_SPELLINGS = {"dbImage": ("dbImageFns", "dbImage"), "utmDb": ("utmDb",),
                   "qImage": ("qImageFns", "qImage"), "utmQ": ("utmQ",)}


@dataclass(frozen=True)
class DbStruct:
    """The parts of a ``dbStruct`` that a conversion needs."""

    which_set: str
    database_images: list[str]
    database_utm: np.ndarray  # (N, 2) east, north
    query_images: list[str]
    query_utm: np.ndarray  # (Q, 2)
    pos_dist_thr: float | None


def _strings(cell: np.ndarray) -> list[str]:
    # A MATLAB cell array of strings loads as an object array of 1-element string arrays.
    out = []
    for entry in np.asarray(cell, dtype=object).ravel():
        value = np.asarray(entry).ravel()
        out.append(str(value[0]) if value.size else "")
    return out


def _utm(value: np.ndarray, count: int, field: str, path: Path) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape == (2, count):
        return array.T.copy()
    if array.shape == (count, 2):
        return array.copy()
    raise ConvertError(f"{path}: dbStruct.{field} has shape {array.shape}; expected (2, {count})")


def _scalar(value: object) -> float | None:
    array = np.asarray(value).ravel()
    return float(array[0]) if array.size else None


def read_db_struct(path: str | Path, queries_required: bool = True) -> DbStruct:
    """Reads a NetVLAD ``dbStruct`` ``.mat`` file.

    Args:
        path: the ``.mat`` file.
        queries_required: whether a struct without query fields is an error (else the
            query lists come back empty).

    Raises:
        ConvertError: the file is missing, not a MATLAB file, or lacks a needed field.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise ConvertError(f"{path}: not found; expected the NetVLAD dbStruct .mat file")
    try:
        mat = loadmat(path)
    except NotImplementedError:
        raise ConvertError(
            f"{path}: a MATLAB v7.3 (HDF5) file; re-save it as v7 in MATLAB/Octave "
            "(save -v7) to convert it"
        ) from None
    except (ValueError, OSError, TypeError) as error:
        raise ConvertError(f"{path}: not a readable .mat file ({error})") from None
    if "dbStruct" not in mat:
        raise ConvertError(f"{path}: no 'dbStruct' variable; expected a NetVLAD dataset file")
    struct = np.asarray(mat["dbStruct"]).ravel()[0]
    names = struct.dtype.names or ()
    found = {field: next((name for name in spellings if name in names), None)
             for field, spellings in FIELD_SPELLINGS.items()}
    optional = () if queries_required else ("qImage", "utmQ")
    missing = [" or ".join(FIELD_SPELLINGS[field]) for field, name in found.items()
               if not name and field not in optional]
    if missing:
        raise ConvertError(
            f"{path}: dbStruct lacks {', '.join(missing)}; it has {', '.join(names)} "
            "(expected the NetVLAD layout)"
        )
    database = _strings(struct[found["dbImage"]])
    has_queries = bool(found["qImage"] and found["utmQ"])
    queries = _strings(struct[found["qImage"]]) if has_queries else []
    which = _strings(struct["whichSet"])[0] if "whichSet" in names else ""
    return DbStruct(
        which_set=which,
        database_images=database,
        database_utm=_utm(struct["utmDb"], len(database), "utmDb", path),
        query_images=queries,
        query_utm=(_utm(struct["utmQ"], len(queries), "utmQ", path) if queries
                   else np.zeros((0, 2))),
        pos_dist_thr=_scalar(struct["posDistThr"]) if "posDistThr" in names else None,
    )
