"""`vpr serve`: a geolocation HTTP service and web page over a location index."""

from __future__ import annotations

import argparse
import logging

from vpr.cli.flags import add_device_options, device_of, precision_of
from vpr.cli.locate import add_min_confidence_option
from vpr.cli.published import (
    MOVED_WEIGHTS_HELP,
    add_published_model_options,
    model_file_of_index,
)
from vpr.cli.serve_batching import add_batching_options, read_batching_options
from vpr.export.options import add_runtime_options, runtime_from_args
from vpr.rerank.options import add_rerank_options, rerank_settings
from vpr.serve.defaults import DEFAULT_MAX_UPLOAD_MB


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve a web page and an HTTP API that locate photos with an index",
        description="Load a location index and its model once, then answer POST /locate "
                    "(an uploaded photo -> the JSON of `vpr locate --json`), POST /locate/batch "
                    "(several photos), GET / (a page: drop photos or a folder, see each "
                    "prediction on a map with its matches, download CSV/GeoJSON), "
                    "GET /thumbnail/ID, GET /image/ID, GET /health and /docs. Binds to "
                    "loopback by default. "
                    "Needs fastapi, uvicorn and python-multipart.",
    )
    parser.add_argument("--index", required=True, help="a folder made by `vpr index build`")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port to listen on; 0 picks a free one (default: 8000)")
    parser.add_argument("--max_upload_mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                        help="largest photo accepted, in MB; larger ones get 413 (default: "
                             f"{DEFAULT_MAX_UPLOAD_MB:g})")
    parser.add_argument("--top_k", type=int, default=5,
                        help="matches per photo when a request does not say (default: 5)")
    parser.add_argument("--radius", type=float, default=25.0,
                        help="matches within this many metres form a cluster (default: 25)")
    add_min_confidence_option(parser)
    parser.add_argument("--ckpt_path", default=None,
                        help="the index's checkpoint, if it moved (checked by sha256)")
    add_published_model_options(parser, weights_help=MOVED_WEIGHTS_HELP)
    add_device_options(parser)
    parser.add_argument("--nprobe", type=int, default=None,
                        help="ivf/ivfpq indexes: lists visited per query (default: as built)")
    parser.add_argument("--log_level", default="info",
                        choices=("debug", "info", "warning", "error"),
                        help="server log level; debug also logs each request (default: info)")
    add_batch_options(parser)
    add_limit_options(parser)
    add_batching_options(parser)
    add_rerank_options(parser)
    add_runtime_options(parser)
    parser.set_defaults(func=run)


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """How many photos one POST /locate/batch (and the page's drops) may carry."""
    from vpr.serve.defaults import DEFAULT_MAX_BATCH_FILES, DEFAULT_MAX_BATCH_MB

    parser.add_argument("--max_batch_files", type=int, default=DEFAULT_MAX_BATCH_FILES,
                        help="most photos in one POST /locate/batch; more get 413 (default: "
                             f"{DEFAULT_MAX_BATCH_FILES}); the page splits larger drops")
    parser.add_argument("--max_batch_mb", type=float, default=DEFAULT_MAX_BATCH_MB,
                        help="largest POST /locate/batch body, in MB; larger get 413 "
                             f"(default: {DEFAULT_MAX_BATCH_MB:g}); each photo still at most "
                             "--max_upload_mb")


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """How much one request, and many at once, may cost the server."""
    from vpr.serve.defaults import (
        DEFAULT_MAX_DECODES,
        DEFAULT_MAX_PIXELS,
        DEFAULT_READ_TIMEOUT_S,
    )

    parser.add_argument("--max_decodes", type=int, default=DEFAULT_MAX_DECODES,
                        help="uploads decoded at the same time; more wait (default: "
                             f"{DEFAULT_MAX_DECODES}); bounds memory under many uploads")
    parser.add_argument("--max_pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="largest image accepted, in pixels; larger get 422 undecoded "
                             f"(default: {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--read_timeout", type=float, default=DEFAULT_READ_TIMEOUT_S,
                        help="seconds a request's head, and then its body, may take to "
                             f"arrive; slower clients get 408 (default: "
                             f"{DEFAULT_READ_TIMEOUT_S:g})")


def run(args: argparse.Namespace) -> int:
    try:
        from vpr.serve import create_app, serve
    except ImportError as error:  # the serving dependencies are optional
        raise ValueError(f"vpr serve needs fastapi, uvicorn and python-multipart ({error}); "
                         "install them with pip install 'vpr[serve]'") from error

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(levelname)s: %(message)s")
    from vpr.locate import LocationIndex
    from vpr.locate.predict import check_min_confidence

    check_min_confidence(args.min_confidence)  # before any worker starts
    batching = read_batching_options(args)
    workers = batching.pop("workers")
    moved = model_file_of_index(LocationIndex.load(args.index), args)
    options = dict(index_path=args.index, ckpt_path=moved, top_k=args.top_k,
                   radius_m=args.radius, max_upload_mb=args.max_upload_mb,
                   device=device_of(args), precision=precision_of(args),
                   nprobe=args.nprobe, max_decodes=args.max_decodes,
                   max_pixels=args.max_pixels, read_timeout=args.read_timeout,
                   max_batch_files=args.max_batch_files, max_batch_mb=args.max_batch_mb,
                   rerank=rerank_settings(args), runtime=runtime_from_args(args),
                   min_confidence=args.min_confidence, **batching)
    try:
        if workers > 1:
            from vpr.serve.workers import serve_workers

            serve_workers(options, workers, host=args.host, port=args.port,
                          log_level=args.log_level)
            return 0
        serve(create_app(**options), host=args.host, port=args.port,
              log_level=args.log_level)
    except OSError as error:  # e.g. port already in use
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {error}") from error
    return 0
