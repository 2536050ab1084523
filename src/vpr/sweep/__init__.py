"""Sweeps: a grid of `vpr train` runs (`vpr sweep`) and their report (`vpr report`).

See docs/EXPERIMENTS.md.
"""

from vpr.sweep.grid import Grid, GridError, RunSpec, exp_name_for, load_grid, parse_grid
from vpr.sweep.records import SweepError
from vpr.sweep.report import ReportFiles, markdown_table, write_report
from vpr.sweep.results import SweepResults, collect, dataset_label
from vpr.sweep.runner import PlannedRun, SweepSummary, plan_sweep, run_sweep

__all__ = [
    "Grid",
    "GridError",
    "PlannedRun",
    "ReportFiles",
    "RunSpec",
    "SweepError",
    "SweepResults",
    "SweepSummary",
    "collect",
    "dataset_label",
    "exp_name_for",
    "load_grid",
    "markdown_table",
    "parse_grid",
    "plan_sweep",
    "run_sweep",
    "write_report",
]
