"""`vpr sweep`: run a grid of `vpr train` experiments (e.g. a table of the paper), resumably."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from vpr.cli.flags import add_switch


def _setting(text: str) -> tuple[str, Any]:
    """KEY=VALUE for --set; the value is read as YAML (2 -> int, [a, b] -> list)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        return key.strip(), value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_parser(subparsers) -> None:
    """Adds the `sweep` subcommand."""
    parser = subparsers.add_parser(
        "sweep", help="run every combination of a grid of train settings (the paper's tables), "
                      "resumably, then write the report",
        description="Expand a grid file (base: flags shared by all runs, grid: flag -> values) "
                    "into runs, one ordinary `vpr train` experiment each under "
                    "OUT/lightning_logs/<name>/, named after its values and seed. Finished runs "
                    "(done.json) are skipped when the command is run again; an interrupted one "
                    "resumes from its last.ckpt; a failed one is recorded in OUT/sweep.json and "
                    "does not stop the others. Ends with `vpr report OUT`. See "
                    "docs/EXPERIMENTS.md.",
    )
    parser.add_argument("--grid", type=Path, required=True, metavar="FILE.yaml",
                        help="the grid file, e.g. configs/paper/table1.yaml")
    parser.add_argument("--out", type=Path, default=None, metavar="SWEEP_DIR",
                        help="sweep folder (default: sweeps/<grid name>)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                        help="run every cell with each seed; the report shows mean ± std "
                             "(default: the grid's seeds:, else 0)")
    parser.add_argument("--set", type=_setting, action="append", default=None, dest="settings",
                        metavar="KEY=VALUE",
                        help="override a base: flag for every run, e.g. --set max_epochs=2 "
                             "--set num_workers=2 (repeatable)")
    parser.add_argument("--dry_run", action="store_true",
                        help="print what would run (and the `vpr train` command of each run) "
                             "without running anything")
    parser.add_argument("--max_runs", type=_positive, default=None, metavar="N",
                        help="start at most N runs now; run the command again for the rest")
    parser.add_argument("--isolate", action="store_true",
                        help="run each experiment as a `vpr train` subprocess instead of in "
                             "this process (a crash or out-of-memory only ends that run)")
    add_switch(parser, "report", "write OUT/report at the end")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plans or runs the sweep; returns 1 when a run failed, 2 on bad input."""
    from vpr.sweep import SweepError, load_grid, plan_sweep, run_sweep, write_report
    from vpr.sweep.grid import validate
    from vpr.utils.logs import setup_logging

    overrides = dict(args.settings or [])
    try:
        grid = load_grid(args.grid, seeds=args.seeds, overrides=overrides)
        out = args.out if args.out is not None else Path("sweeps") / grid.name
        if args.dry_run:
            validate(grid.runs(), out)
            _print_plan(plan_sweep(grid, out), out)
            return 0
        setup_logging()
        command = "vpr " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
        summary = run_sweep(grid, out, isolate=args.isolate, max_runs=args.max_runs,
                            command=command)
    except SweepError as error:
        print(f"vpr: error: {error}", file=sys.stderr)
        return 2
    print()
    print(f"Sweep {grid.name} in {out}: {len(summary.done)} run(s) done now, "
          f"{len(summary.skipped)} already done, {len(summary.failed)} failed, "
          f"{len(summary.pending)} left for later")
    for name, error in summary.failed.items():
        print(f"  failed: {name}: {error}")
    if args.report:
        files = write_report(out, compare=bool(grid.paper))
        print()
        print(files.text)
        print(f"Report: {files.markdown} (also {files.results_csv.name}, {files.runs_csv.name}"
              + (f", {files.chart.name}" if files.chart else "") + ")")
    if summary.pending:
        print(f"Run the same command again to continue ({len(summary.pending)} left).")
    return 1 if summary.failed else 0


def _print_plan(planned: list, out: Path) -> None:
    what = {"skip": "done, skip", "new": "run", "resume": "resume from last.ckpt",
            "restart": "move aside, run again"}
    print(f"Sweep folder: {out}")
    print(f"{len(planned)} run(s):")
    for item in planned:
        reason = f" ({item.reason})" if item.reason else ""
        print(f"  [{what[item.action]}{reason}] {item.spec.exp_name}")
        if item.action != "skip":
            argv = item.spec.train_argv(out, item.resume_from)
            print(f"      vpr {shlex.join(argv)}")
