"""`vpr download`: fetch the real GSV-XS, SF-XS and Tokyo-XS datasets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vpr.cli.download_benchmark import add_benchmark_download_options, run_benchmark_downloads

DATASET_NAMES = ("gsv_xs", "sf_xs", "tokyo_xs")


def _benchmark_names() -> list[str]:
    from vpr.benchmarks.manifest import list_manifests

    return [name for name in list_manifests() if name != "synthetic"]


def _dataset_name(text: str) -> str:
    # A type check rather than `choices`: Python 3.11 rejects `choices` with nargs="*".
    if text not in DATASET_NAMES and text not in _benchmark_names():
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}; choose from {', '.join(DATASET_NAMES)} or a standard "
            f"benchmark: {', '.join(_benchmark_names())}")
    return text


def add_parser(subparsers) -> None:
    """Adds the `download` subcommand."""
    parser = subparsers.add_parser(
        "download",
        help="download the real datasets (GSV-XS, SF-XS, Tokyo-XS) from Google Drive",
        description="Download the datasets' zip archives from Google Drive (needs network "
                    "access and `pip install gdown`), unpack them into OUT/<name>/ and check "
                    "their layout: gsv_xs/train, sf_xs/{val,test}/{database,queries}, "
                    "tokyo_xs/test/{database,queries}. A dataset already in place is skipped. "
                    "Offline, pass an archive fetched elsewhere with --archive. A standard "
                    "benchmark name (vpr benchmark --list) that is free over HTTP "
                    "(nordland*, sped, amstertime, eynsham) is downloaded (resumable .part "
                    "files), unpacked safely into OUT/<name>_raw/ and converted into "
                    "OUT/<name>/; the others print where to get them and the convert command.",
    )
    parser.add_argument("datasets", nargs="*", type=_dataset_name, default=[],
                        metavar="DATASET",
                        help=f"which datasets: {', '.join(DATASET_NAMES)} (default: all three); "
                             "a standard benchmark name downloads and converts it when it is "
                             "free (nordland*, sped, amstertime, eynsham), else says where to "
                             "get it and how to convert it")
    parser.add_argument("--out", type=Path, default=Path("data"), metavar="DIR",
                        help="folder that receives one sub-folder per dataset (default: data)")
    parser.add_argument("--archive", type=Path, default=None, metavar="ZIP",
                        help="use this local zip instead of downloading (name exactly one "
                             "dataset)")
    parser.add_argument("--keep_archive", action="store_true",
                        help="keep the downloaded zip files after unpacking")
    add_benchmark_download_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Downloads (or unpacks) each requested dataset; returns the exit code."""
    from vpr.data.download import DownloadError, download_dataset

    names = list(dict.fromkeys(args.datasets)) or list(DATASET_NAMES)
    benchmarks = [name for name in names if name not in DATASET_NAMES]
    if benchmarks:
        # Free benchmarks are fetched and converted; the others say where to ask.
        return run_benchmark_downloads(benchmarks, args)
    if args.archive is not None and len(names) != 1:
        print("vpr: error: --archive needs exactly one dataset name, e.g. "
              "`vpr download tokyo_xs --archive tokyo_xs.zip`", file=sys.stderr)
        return 2
    for name in names:
        try:
            folder = download_dataset(name, args.out, archive=args.archive,
                                      keep_archive=args.keep_archive)
        except DownloadError as error:
            print(f"vpr: error: {name}: {error}", file=sys.stderr)
            return 2
        print(f"{name}: ready in {folder}")
    return 0
