"""`vpr index build --devices N --num_nodes M`: describe the database on several devices."""

from __future__ import annotations

import argparse


def add_index_devices_options(parser: argparse.ArgumentParser) -> None:
    """How many processes (per machine) and machines describe the database."""
    parser.add_argument("--devices", type=int, default=1,
                        help="processes per machine describing a shard of the images each "
                             "(GPUs with --device cuda, else CPU processes; torch.distributed "
                             "through Lightning; default: 1)")
    parser.add_argument("--num_nodes", type=int, default=1,
                        help="machines, as for `vpr train`; the database and --out must be "
                             "on a file system they share (default: 1)")


def read_index_devices_options(args: argparse.Namespace) -> dict[str, int]:
    """``{devices, num_nodes}``, checked.

    Raises:
        ValueError: a value below 1.
    """
    if args.devices < 1 or args.num_nodes < 1:
        raise ValueError(f"--devices and --num_nodes must be >= 1, got {args.devices} and "
                         f"{args.num_nodes}")
    return {"devices": args.devices, "num_nodes": args.num_nodes}
