"""`vpr index`: build, grow and inspect a location index (descriptors of geotagged images)."""

from __future__ import annotations

import argparse

from vpr.cli.flags import add_device_options, add_setting, device_of, precision_of
from vpr.cli.index_devices import add_index_devices_options, read_index_devices_options
from vpr.cli.published import (
    MOVED_WEIGHTS_HELP,
    add_published_model_options,
    image_size_of,
    model_file_of_index,
    published_choice,
)
from vpr.export.options import add_runtime_options, runtime_from_args

INDEX_TYPES = ("flat", "ivf", "hnsw", "ivfpq")


def _add_extraction_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch_size", type=int, default=32,
                        help="images per forward pass (default: 32)")
    parser.add_argument("--num_workers", type=int, default=0,
                        help="DataLoader worker processes (default: 0)")
    add_device_options(parser)
    add_setting(parser, "progress_bar")
    add_lock_options(parser)
    add_runtime_options(parser)


def add_lock_options(parser: argparse.ArgumentParser) -> None:
    """Options of commands that write an index: how long to wait for another writer."""
    parser.add_argument("--lock_timeout", type=float, default=600.0,
                        help="seconds to wait while another process writes the same index, "
                             "then give up naming its pid (default: 600)")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "index", help="build or grow a location index for `vpr locate`",
        description="A location index is a folder with the descriptors of geotagged "
                    "(@-named) images, their paths, coordinates and the checkpoint's path and "
                    "sha256 in SQLite, and a faiss index for approximate search. Descriptors "
                    "are computed "
                    "once; `vpr locate` then only describes the photos to locate.",
    )
    actions = parser.add_subparsers(dest="index_command", metavar="ACTION")

    build = actions.add_parser(
        "build", help="describe a folder of geotagged images and save an index",
        description="Describe every image under --database with the model of --ckpt_path "
                    "and save the index folder --out (written atomically; an existing one is "
                    "replaced only with --overwrite).")
    build.add_argument("--ckpt_path", default=None,
                       help="a .ckpt file of vpr train (or give a published --model)")
    build.add_argument("--database", required=True,
                       help="folder of @-named images (searched recursively)")
    build.add_argument("--out", required=True, help="the index folder to create")
    build.add_argument("--index_type", choices=INDEX_TYPES, default="flat",
                       help="flat = exact search (default); ivf / hnsw = faster approximate "
                            "search; ivfpq = compressed, for millions of images")
    build.add_argument("--nlist", type=int, default=None,
                       help="ivf/ivfpq: inverted lists (default: about 4 sqrt(N))")
    build.add_argument("--nprobe", type=int, default=16,
                       help="ivf/ivfpq: lists visited per query (default: 16)")
    build.add_argument("--coarse", choices=("flat", "hnsw"), default="flat",
                       help="ivf/ivfpq: how vectors find their lists: flat (exact, default) "
                            "or hnsw (a graph of the list centres; for 10M+ images)")
    build.add_argument("--pca_dim", type=int, default=None,
                       help="reduce descriptors to this dimension by PCA first (default: off)")
    build.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    build.add_argument("--image_size", type=int, nargs="+", default=None, metavar="PX",
                       help="--model only: resize images to H [W] pixels (default: the "
                            "model's own size)")
    _add_extraction_options(build)
    add_index_devices_options(build)
    add_published_model_options(build)

    add = actions.add_parser(
        "add", help="add images to an index without recomputing the existing ones",
        description="Describe the images under --images that the index lacks, with the "
                    "index's own model, and append them (the existing rows are not "
                    "rewritten; the new version is published atomically). "
                    "A --ckpt_path other than the index's checkpoint is refused.")
    add.add_argument("--index", required=True, help="the index folder")
    add.add_argument("--images", required=True, help="folder of @-named images, or one image")
    add.add_argument("--ckpt_path", default=None,
                     help="the index's checkpoint, if it moved (checked by sha256)")
    _add_extraction_options(add)
    add_published_model_options(add, weights_help=MOVED_WEIGHTS_HELP)

    info = actions.add_parser("info", help="summarise an index")
    info.add_argument("--index", required=True, help="the index folder")
    parser.set_defaults(func=run, index_parser=parser)


def run(args: argparse.Namespace) -> int:
    from vpr.locate.index import LocationIndex
    from vpr.utils.disk import check_writable
    from vpr.utils.logs import setup_logging

    command = getattr(args, "index_command", None)
    if command is None:
        args.index_parser.print_help()
        return 2
    setup_logging()
    if command == "build":
        check_writable(args.out, "--out")  # a read-only or full disk fails before extraction
        options = {"nprobe": args.nprobe}
        if args.nlist:
            options["nlist"] = args.nlist
        if args.pca_dim:
            options["pca_dim"] = args.pca_dim
        if args.coarse != "flat":
            options["coarse"] = args.coarse
        choice = published_choice(args)
        if choice.weights and not choice.model:
            raise ValueError("--weights needs --model NAME[:VARIANT] (the file's layout)")
        from vpr.locate.distributed import build_on_devices

        index = build_on_devices(
            args.out, args.ckpt_path, args.database, **read_index_devices_options(args),
            index_type=args.index_type, batch_size=args.batch_size,
            num_workers=args.num_workers, precision=precision_of(args),
            overwrite=args.overwrite, progress=getattr(args, "progress_bar", True),
            index_options=options, lock_timeout=args.lock_timeout,
            model=choice.model, weights=choice.weights, image_size=image_size_of(args),
            runtime=runtime_from_args(args),
        )
        if index is not None:  # rank 0 (the only process without --devices)
            print(f"Built {index}")
        return 0
    index = LocationIndex.load(args.index)
    if command == "add":
        moved = model_file_of_index(index, args)
        added = index.add(args.images, ckpt_path=moved, batch_size=args.batch_size,
                          num_workers=args.num_workers, device=device_of(args),
                          precision=precision_of(args),
                          progress=getattr(args, "progress_bar", True),
                          lock_timeout=args.lock_timeout, runtime=runtime_from_args(args))
        print(f"Added {added} images: {index}")
        return 0
    model = index.meta["model"]
    print(index)
    if model.get("published_model"):
        print(f"published model: {model['published_model']}, weights {model['weights']} "
              f"(from {model['weights_source']}, sha256 {model['sha256'][:16]}...)")
    else:
        print(f"checkpoint: {model['checkpoint']} (sha256 {model['sha256'][:16]}...)")
    print(f"model: {model['hparams'].get('backbone')} + {model['hparams'].get('agg_arch')}, "
          f"{model['descriptors_dim']}-D, image size {model['image_size'] or 'native'}")
    runtime = model.get("runtime") or {"name": "torch"}
    print(f"descriptors by {runtime['name']}" + (f" ({runtime['model']})" if
                                                  runtime["name"] == "onnx" else ""))
    print(f"built with vpr {index.meta['vpr_version']} on {index.meta['created']}, "
          f"updated {index.meta['updated']}")
    return 0
