"""The ``--train_format`` option of `vpr train` (GSV-XS folders or GSV-Cities)."""

from __future__ import annotations

import argparse


def add_train_format_option(group: argparse._ArgumentGroup) -> None:
    """Adds ``--train_format`` to the data options."""
    group.add_argument("--train_format", choices=("auto", "gsv_xs", "gsv_cities"),
                       default="auto",
                       help="training set layout: gsv_xs (@-named images, place id in the "
                            "note) or gsv_cities (Dataframes/<City>.csv + Images/<City>/); "
                            "auto detects GSV-Cities by its Dataframes/ folder (default: auto)")
