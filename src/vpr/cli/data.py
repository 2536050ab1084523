"""`vpr data`: check, analyse, import your own datasets and convert benchmarks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="check, analyse or import your own dataset folders",
        description="Tools for your own data: `check` validates a training or test folder, "
                    "`stats` writes tables and plots about it, `import` copies a folder of "
                    "photos into the @-filename format. See docs/YOUR_DATA.md.",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    _add_check(actions)
    _add_stats(actions)
    _add_import(actions)
    _add_convert(actions)
    parser.set_defaults(func=run, data_command=None)


def _add_kind(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=("train", "test"), default=None,
                        help="dataset layout (default: test when DIR has database/ and "
                             "queries/, else train)")


def _add_threshold(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--positive_dist_threshold", type=float, default=25.0,
                        help="a database image within this many metres of a query is a "
                             "positive (default: 25)")


def _add_check(actions) -> None:
    parser = actions.add_parser(
        "check", help="validate a training or test folder; exit 1 if problems are found",
        description="Validate a dataset folder: a training folder (a tree of @-named images, "
                    "places grouped by the note field) or a test folder (database/ and "
                    "queries/). Reports counts, places, images per place, and problems: "
                    "unparseable names, NaN/infinite/out-of-range coordinates, empty place "
                    "ids, unreadable images (every image is opened), duplicate file names, "
                    "places below --min_img_per_place, queries without a positive. "
                    "Exit status: 0 clean, 1 problems found, 2 the folder cannot be checked.",
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="dataset folder")
    _add_kind(parser)
    _add_threshold(parser)
    parser.add_argument("--min_img_per_place", type=int, default=4,
                        help="report training places with fewer images (training drops "
                             "them) (default: 4)")
    parser.add_argument("--no_open", action="store_true",
                        help="check names only; do not open every image (much faster, but "
                             "unreadable files go unnoticed)")
    parser.add_argument("--workers", type=int, default=None,
                        help="threads opening images (default: up to 8, one per CPU core)")
    parser.add_argument("--max_examples", type=int, default=5,
                        help="example paths printed per problem category (default: 5)")
    parser.add_argument("--json", action="store_true",
                        help="print the full report as JSON on stdout (every problem listed)")
    parser.add_argument("--no_progress_bar", action="store_true", help="disable progress bars")


def _add_stats(actions) -> None:
    parser = actions.add_parser(
        "stats", help="write dataset tables and plots (counts, histograms, map, samples)",
        description="Analyse a dataset folder and write into --out: counts_per_city.csv and "
                    ".png (images and places per sub-folder), images_per_place.png (training) "
                    "or positives_per_query.png (test), extents.json (UTM and lat/lon "
                    "ranges, zones), utm_scatter.png (positions; database vs queries for test "
                    "sets) and sample_sheet.png (one place's images, or a query and its "
                    "positives). Existing files of the same names are replaced.",
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the report files")
    _add_kind(parser)
    _add_threshold(parser)
    parser.add_argument("--place", default=None,
                        help="place id (note field) shown in the sample sheet of a training "
                             "set (default: the place with the most images)")
    parser.add_argument("--sample_size", type=int, default=8,
                        help="images in the sample sheet (default: 8)")


def _add_import(actions) -> None:
    parser = actions.add_parser(
        "import", help="copy a folder of photos into the @-filename format (never moves)",
        description="Copy the photos under SRC into --out with @-format names. Positions come "
                    "from --csv (columns path,lat,lon[,place_id], paths relative to SRC) or, "
                    "without --csv, from each photo's EXIF GPS tags. Latitude/longitude are "
                    "converted to UTM; EXIF DateTimeOriginal fills the timestamp; the place "
                    "id goes in the note field. Sub-folders are kept. Source files are never "
                    "modified; the import refuses to start if any destination file exists. "
                    "Photos without a position are listed and skipped: exit status 1 unless "
                    "--allow_missing.",
    )
    parser.add_argument("src", type=Path, metavar="SRC", help="folder of photos (only read)")
    parser.add_argument("--out", type=Path, required=True,
                        help="destination folder (created; existing files are never replaced)")
    parser.add_argument("--csv", type=Path, default=None, metavar="FILE",
                        help="CSV with columns path,lat,lon[,place_id] (default: read EXIF GPS)")
    parser.add_argument("--place_from", choices=("folder", "csv", "none"), default=None,
                        help="place id source: the photo's sub-folder, the CSV's place_id "
                             "column, or none (test sets) (default: csv when the CSV has "
                             "place_id, else folder)")
    parser.add_argument("--allow_missing", action="store_true",
                        help="exit 0 even if some photos were skipped (no GPS, bad row)")
    parser.add_argument("--dry_run", action="store_true",
                        help="show what would be copied; copy nothing")
    parser.add_argument("--max_examples", type=int, default=10,
                        help="skipped photos listed (default: 10)")
    parser.add_argument("--no_progress_bar", action="store_true", help="disable progress bars")


def _add_convert(actions) -> None:
    parser = actions.add_parser(
        "convert", help="convert a standard benchmark's raw download into a test set folder",
        description="Convert the raw download of a standard benchmark (Pittsburgh, Tokyo 24/7, "
                    "MSLS, Nordland, St Lucia, SVOX...) into --out/database and --out/queries "
                    "with @-names, plus ground_truth.json where positives are not a distance "
                    "and vpr_dataset.json (protocol, counts, file list hash). Images are "
                    "hard-linked (symlinked across filesystems; --copy copies). A rerun skips "
                    "and checks what is already there. See docs/DATA.md for each raw layout.",
    )
    # No import of the converters here: building the parser must stay cheap (no torch).
    parser.add_argument("name", metavar="NAME",
                        help="the benchmark protocol, e.g. pitts30k_test, tokyo247, "
                             "msls_val_740, nordland (all: vpr benchmark --list)")
    parser.add_argument("raw", type=Path, metavar="RAW_DIR", help="the raw download (only read)")
    parser.add_argument("--out", type=Path, required=True, help="the test set folder to write")
    parser.add_argument("--copy", action="store_true",
                        help="copy the images instead of linking them")
    parser.add_argument("--no_progress_bar", action="store_true", help="disable progress bars")


def run_convert(args: argparse.Namespace) -> int:
    from vpr.datatools.convert import convert_dataset

    report = convert_dataset(args.name, args.raw, args.out, copy=args.copy,
                             progress=not args.no_progress_bar)
    print(report.summary())
    return 0


def run(args: argparse.Namespace) -> int:
    handlers = {"check": run_check, "stats": run_stats, "import": run_import,
                "convert": run_convert}
    if args.data_command is None:
        print("vpr data: choose an action: check, stats, import or convert (vpr data --help)",
              file=sys.stderr)
        return 2
    return handlers[args.data_command](args)


def run_check(args: argparse.Namespace) -> int:
    from vpr.data.check import check_dataset, format_report

    report = check_dataset(
        args.dir, kind=args.kind, positive_dist_threshold=args.positive_dist_threshold,
        min_img_per_place=args.min_img_per_place, open_images=not args.no_open,
        workers=args.workers, progress=not args.no_progress_bar,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report, args.max_examples))
    return 0 if report.ok else 1


def run_stats(args: argparse.Namespace) -> int:
    from vpr.data.stats import write_stats
    from vpr.utils.disk import check_writable

    check_writable(args.out, "--out")  # a read-only or full disk fails before the analysis
    files = write_stats(args.dir, args.out, kind=args.kind,
                        positive_dist_threshold=args.positive_dist_threshold,
                        place=args.place, sample_size=args.sample_size)
    print(f"Wrote {len(files)} files to {args.out}:")
    for path in files.values():
        print(f"  {path.name}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from vpr.data.importer import import_photos

    report = import_photos(args.src, args.out, csv_path=args.csv, place_from=args.place_from,
                           dry_run=args.dry_run, progress=not args.no_progress_bar)
    verb = "Would copy" if report.dry_run else "Copied"
    print(f"{verb} {len(report.copied)} photo(s) into {args.out}")
    if report.dry_run:
        for source, destination in report.copied[: args.max_examples]:
            print(f"  {source} -> {destination}")
    if report.skipped:
        print(f"Skipped {len(report.skipped)} photo(s):")
        for skipped in report.skipped[: args.max_examples]:
            print(f"  {skipped.source}  ({skipped.reason})")
        if len(report.skipped) > args.max_examples:
            print(f"  ... and {len(report.skipped) - args.max_examples} more")
        if not args.allow_missing:
            print("Exit status 1: photos were skipped (--allow_missing accepts that)",
                  file=sys.stderr)
            return 1
    return 0
