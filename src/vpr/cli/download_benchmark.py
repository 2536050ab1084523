"""`vpr download NAME` for the standard benchmarks: fetch the free ones, explain the others."""

from __future__ import annotations

import argparse
import sys


def add_benchmark_download_options(parser: argparse.ArgumentParser) -> None:
    """The options of `vpr download` that only concern standard benchmarks."""
    parser.add_argument("--no_progress_bar", action="store_true",
                        help="no progress bars while downloading and converting benchmarks")


def explain_benchmark(name: str) -> str:
    """Where to get a standard benchmark's raw data, and the command that converts it."""
    from vpr.benchmarks.manifest import load_manifest

    manifest = load_manifest(name)
    how = ("needs a request form" if manifest.access == "request" else
           "is not fetched automatically by this version")
    return f"{name} {how}: {manifest.obtain}"


def run_benchmark_downloads(names: list[str], args: argparse.Namespace) -> int:
    """Downloads and converts each free benchmark of ``names`` into ``args.out``.

    The others (behind a form, or not automated) get one line saying where to get them and
    the command that converts them; the exit code is then 2.
    """
    from vpr.datatools.fetch import SOURCES, FetchError, download_benchmark

    code = 0
    for name in names:
        if name not in SOURCES:
            print(f"vpr: error: {explain_benchmark(name)}", file=sys.stderr)
            code = 2
            continue
        try:
            report = download_benchmark(name, args.out,
                                        progress=not getattr(args, "no_progress_bar", False))
        except FetchError as error:
            print(f"vpr: error: {name}: {error}", file=sys.stderr)
            return 2
        print(report.summary())
    return code
