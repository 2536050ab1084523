"""`vpr report`: a sweep's results as a paper-style markdown table, CSV and bar chart."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    """Adds the `report` subcommand."""
    parser = subparsers.add_parser(
        "report", help="tabulate a sweep's results like the paper's tables (markdown, CSV, PNG)",
        description="Read SWEEP_DIR (made by `vpr sweep`) and write report.md (rows: the "
                    "varied settings; columns: R@1 and R@5 per test set; mean ± std over "
                    "seeds), results.csv, runs.csv (one line per run) and recalls.png (grouped "
                    "bars). Unfinished runs show as —, failed ones are listed with their error.",
    )
    parser.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="the sweep folder")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: SWEEP_DIR/report)")
    parser.add_argument("--compare", nargs="?", const=True, default=False, metavar="GRID.yaml",
                        help="add the published numbers beside ours: from the paper: section "
                             "of the sweep's grid, or of the grid file given")
    parser.add_argument("--recalls", type=int, nargs="+", default=[1, 5], metavar="N",
                        help="which Recall@N to show (default: 1 5)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Writes the report and prints the markdown table; 2 when there is nothing to report."""
    import yaml

    from vpr.sweep import SweepError, write_report

    paper = None
    if isinstance(args.compare, str):
        path = Path(args.compare)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: grid file not found")
        paper = (yaml.safe_load(path.read_text()) or {}).get("paper")
        if not paper:
            raise ValueError(f"{path}: no paper: section with published numbers")
    recalls = tuple(f"R@{n}" for n in dict.fromkeys(args.recalls))
    try:
        files = write_report(args.sweep_dir, args.out, compare=bool(args.compare),
                             recalls=recalls, paper=paper)
    except SweepError as error:
        print(f"vpr: error: {error}", file=sys.stderr)
        return 2
    print(files.text)
    written = [files.markdown, files.results_csv, files.runs_csv]
    if files.chart is not None:
        written.append(files.chart)
    print("Wrote " + ", ".join(str(path) for path in written))
    return 0
