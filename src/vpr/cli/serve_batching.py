"""`vpr serve` throughput options: batching concurrent requests, several worker processes."""

from __future__ import annotations

import argparse

from vpr.serve.defaults import DEFAULT_MAX_BATCH, DEFAULT_WINDOW_MS


def add_batching_options(parser: argparse.ArgumentParser) -> None:
    """How concurrent requests share the model: batches, and processes."""
    parser.add_argument("--max_batch", type=int, default=DEFAULT_MAX_BATCH,
                        help="the most concurrent requests described in one forward pass; "
                             f"1 = one request at a time (default: {DEFAULT_MAX_BATCH})")
    parser.add_argument("--batch_window_ms", type=float, default=DEFAULT_WINDOW_MS,
                        help="how long a request waits for others to share its forward pass, "
                             f"in ms (default: {DEFAULT_WINDOW_MS:g})")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes sharing the port, each with the index "
                             "memory-mapped and its own model (default: 1)")


def read_batching_options(args: argparse.Namespace) -> dict[str, float | int]:
    """``{max_batch, batch_window_ms, workers}``, checked.

    Raises:
        ValueError: a value out of range.
    """
    if args.max_batch < 1:
        raise ValueError(f"--max_batch must be >= 1, got {args.max_batch}")
    if args.batch_window_ms < 0:
        raise ValueError(f"--batch_window_ms must be >= 0, got {args.batch_window_ms}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    return {"max_batch": args.max_batch, "batch_window_ms": args.batch_window_ms,
            "workers": args.workers}
