"""`vpr benchmark`: the standard table of Recall@N for several models on pinned protocols."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpr.cli.flags import add_device_options, add_switch, device_of, precision_of


def _data_pair(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME=DIR, e.g. pitts30k_test=data/pitts30k_test")
    return name, Path(folder)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "benchmark", help="Recall@N of several models on the standard benchmarks, one table",
        description="Evaluate each model (--ckpt_path of ours, --model/--weights of published "
                    "ones) on each benchmark (--data NAME=DIR, folders made by `vpr data "
                    "convert`) under its pinned protocol (`vpr benchmark --list`). Every "
                    "folder is checked against its protocol before any work. Writes "
                    "table.md, table.csv and table.json into --out; descriptors are cached "
                    "in --cache_dir so a second table is cheap.",
    )
    parser.add_argument("--ckpt_path", nargs="+", default=[], metavar="CKPT",
                        help="checkpoints of vpr train")
    parser.add_argument("--model", action="append", default=[], metavar="NAME",
                        help="a named published model (repeat; one --weights each)")
    parser.add_argument("--weights", action="append", default=[], metavar="FILE",
                        help="the weights file of the --model at the same position")
    parser.add_argument("--data", nargs="+", type=_data_pair, default=[], metavar="NAME=DIR",
                        help="benchmark protocol name and its converted folder")
    parser.add_argument("--out", type=Path, default=Path("benchmark"),
                        help="folder for table.md/csv/json (default: benchmark)")
    parser.add_argument("--cache_dir", type=Path, default=None,
                        help="descriptor cache (default: OUT/descriptors)")
    add_switch(parser, "cache", "cache descriptors in --cache_dir")
    parser.add_argument("--allow_partial", action="store_true",
                        help="leave out (and report) benchmarks whose folder differs from "
                             "its protocol instead of stopping")
    parser.add_argument("--image_size_from", choices=("model", "manifest"), default="model",
                        help="resize images to the model's own size or to the protocol's "
                             "published size (default: model)")
    parser.add_argument("--batch_size", type=int, default=32, help="images per batch")
    parser.add_argument("--num_workers", type=int, default=0, help="DataLoader workers")
    # Full precision unless --precision asks otherwise: the table's numbers are fp32's.
    add_device_options(parser, precision_default="32-true")
    parser.add_argument("--list", action="store_true",
                        help="list the protocols and exit")
    add_switch(parser, "progress_bar", "show progress bars")
    from vpr.rerank.options import add_rerank_options

    add_rerank_options(parser)
    parser.set_defaults(func=run)


def _print_protocols() -> None:
    from vpr.benchmarks.listing import protocol_lines
    from vpr.benchmarks.manifest import list_manifests, load_manifest

    for name in list_manifests():
        print("\n".join(protocol_lines(load_manifest(name))))


def run(args: argparse.Namespace) -> int:
    from vpr.benchmarks.models import (
        load_checkpoint_model,
        load_published_model,
        unique_labels,
    )
    from vpr.benchmarks.run import BenchmarkError, run_benchmark
    from vpr.rerank.options import rerank_settings

    if args.list:
        _print_protocols()
        return 0
    if args.weights and len(args.model) != len(args.weights):
        raise BenchmarkError(f"{len(args.model)} --model but {len(args.weights)} --weights; "
                             "give one --weights FILE after each --model NAME (or none: the "
                             "models' registered sources)")
    weights = args.weights or [None] * len(args.model)
    data = dict(args.data)
    if len(data) != len(args.data):
        raise BenchmarkError("a benchmark name is given twice in --data")
    # Check the data before loading any model: a wrong folder fails in seconds.
    from vpr.benchmarks.run import check_datasets

    check_datasets(data, args.allow_partial)
    models = [load_checkpoint_model(path) for path in args.ckpt_path]
    models += [load_published_model(name, weights)
               for name, weights in zip(args.model, weights)]
    unique_labels(models)
    cache_dir = None if not args.cache else (args.cache_dir or args.out / "descriptors")
    table = run_benchmark(models, data, out_dir=args.out, cache_dir=cache_dir,
                          allow_partial=args.allow_partial,
                          image_size_from=args.image_size_from, batch_size=args.batch_size,
                          num_workers=args.num_workers, device=device_of(args),
                          precision=precision_of(args, default="32-true"),
                          progress=args.progress_bar, rerank=rerank_settings(args))
    print(table.to_markdown(), end="")
    print(f"Wrote {args.out}/table.md, table.csv, table.json")
    return 0
