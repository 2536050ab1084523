"""Converters of the standard VPR benchmarks into our @-format test set folders.

One module per dataset builds a `ConversionPlan` from the raw download; `write_plan` links
the images into ``<out>/database`` and ``<out>/queries``. Converters are found by exact
name (the protocol name of their manifest in `vpr.benchmarks`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from vpr.datatools.convert.eynsham import eynsham_plan
from vpr.datatools.convert.msls import msls_val_740_plan, msls_val_full_plan
from vpr.datatools.convert.nordland import PROTOCOLS as NORDLAND_PROTOCOLS
from vpr.datatools.convert.nordland import nordland_plan
from vpr.datatools.convert.pairs import pairs_plan
from vpr.datatools.convert.pittsburgh import pittsburgh_plan
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item
from vpr.datatools.convert.prepared import prepared_plan
from vpr.datatools.convert.published_lists import published_list_plan
from vpr.datatools.convert.tokyo247 import tokyo247_plan
from vpr.datatools.convert.writer import ConvertReport, write_plan


@dataclass(frozen=True)
class Converter:
    """A named converter: ``plan(raw_dir)`` and the raw layout it expects, in words."""

    name: str
    plan: Callable[[Path], ConversionPlan]
    expects: str


CONVERTERS: dict[str, Converter] = {}


def register_converter(name: str, plan: Callable[[Path], ConversionPlan], expects: str) -> None:
    """Registers a converter under its exact name; warns on a duplicate."""
    if name in CONVERTERS:
        warnings.warn(f"converter {name!r} is registered twice", stacklevel=2)
    CONVERTERS[name] = Converter(name, plan, expects)


def get_converter(name: str) -> Converter:
    """The converter of exact ``name``; an unknown name is an error listing the valid ones."""
    if name not in CONVERTERS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(sorted(CONVERTERS))}")
    return CONVERTERS[name]


def convert_dataset(name: str, raw: str | Path, out: str | Path, copy: bool = False,
                    progress: bool = True) -> ConvertReport:
    """Converts the raw download of ``name`` in ``raw`` into the test set folder ``out``."""
    raw = Path(raw)
    if not raw.is_dir():
        raise ConvertError(f"{raw}: raw data folder not found; expected "
                           f"{get_converter(name).expects}")
    plan = get_converter(name).plan(raw)
    return write_plan(plan, out, copy=copy, progress=progress)


for _split in ("test", "val"):
    for _size in ("30k", "250k"):
        register_converter(f"pitts{_size}_{_split}",
                           partial(pittsburgh_plan, protocol=f"pitts{_size}_{_split}"),
                           f"Pittsburgh: 000/..010/, queries_real/, datasets/pitts{_size}_"
                           f"{_split}.mat")
register_converter("tokyo247", tokyo247_plan,
                   "Tokyo 24/7: datasets/tokyo247.mat, 03814/..03829/, 247query_subset_v2/")
register_converter("msls_val_740", msls_val_740_plan,
                   "MSLS: train_val/{cph,sf}/{database,query}/ and msls_val_*.npy lists")
register_converter("msls_val_full", msls_val_full_plan,
                   "MSLS: train_val/{cph,sf}/{database,query}/ with raw.csv, images/")
for _name, _setting in NORDLAND_PROTOCOLS.items():
    register_converter(_name, partial(nordland_plan, protocol=_name),
                       "Nordland (Patch-NetVLAD split): summer/, winter/, cleanImageNames.txt")
register_converter("nordland_vprbench",
                   partial(published_list_plan, protocol="nordland_vprbench", stem="Nordland"),
                   "VPR-Bench Nordland: ref/, query/ and Nordland_{dbImages,qImages,gt}.npy")
register_converter("sped_vprbench",
                   partial(published_list_plan, protocol="sped_vprbench", stem="SPED"),
                   "VPR-Bench SPED: ref/, query/ and SPED_{dbImages,qImages,gt}.npy")
register_converter("sped", partial(pairs_plan, protocol="sped"),
                   "SPED: SPEDTEST/ref/ and SPEDTEST/query/ (or the @-format images/test/)")
register_converter("amstertime", partial(pairs_plan, protocol="amstertime"),
                   "AmsterTime: new/ and old/ (or the @-format images/test/)")
register_converter("st_lucia", partial(prepared_plan, protocol="st_lucia"),
                   "an @-format test set: images/test/{database or gallery,queries}/")
register_converter("eynsham", eynsham_plan,
                   "Eynsham: Eynsham/Images/*.ppm and Eynsham/Route_map/Eynsham.kml (or the "
                   "@-format images/test/)")
for _name, _queries in (("sf_xl_test_v1", "queries_v1"), ("sf_xl_test_v2", "queries_v2"),
                        ("sf_xl_test_night", "queries_night"),
                        ("sf_xl_test_occlusion", "queries_occlusion")):
    register_converter(_name, partial(prepared_plan, protocol=_name, queries_folder=_queries),
                       f"SF-XL (@-format): processed/test/database/ and {_queries}/")
for _condition in ("night", "overcast", "rain", "snow", "sun"):
    register_converter(f"svox_{_condition}",
                       partial(prepared_plan, protocol=f"svox_{_condition}",
                               queries_folder=f"queries_{_condition}"),
                       f"SVOX (@-format): images/test/gallery/ and queries_{_condition}/")

__all__ = ["CONVERTERS", "ConversionPlan", "ConvertError", "ConvertReport", "Converter", "Item",
           "convert_dataset", "get_converter", "register_converter", "write_plan"]
