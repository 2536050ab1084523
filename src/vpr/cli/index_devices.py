"""`vpr index build --devices N --num_nodes M`: describe the database on several devices.

`--accelerator` and `--devices` are the hardware flags every command shares
(`vpr.cli.flags.add_device_options`); for `index build` a count of devices above one starts
that many processes per machine, each describing a shard of the images.
"""

from __future__ import annotations

import argparse


def add_index_devices_options(parser: argparse.ArgumentParser) -> None:
    """How many machines describe the database (`--devices` is the per-machine count)."""
    parser.add_argument("--num_nodes", type=int, default=1,
                        help="machines, as for `vpr train`; the database and --out must be "
                             "on a file system they share (default: 1)")


def _device_count(devices: object) -> int:
    """Processes per machine that ``--devices`` asks for: a count, a list's length, or 1."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if text in ("auto", ""):
        return 1
    if "," in text:
        return len([part for part in text.split(",") if part.strip()])
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--devices {text}: expected a count, a list like 0,1, or auto") \
            from None


def read_index_devices_options(args: argparse.Namespace) -> dict[str, object]:
    """``{devices, num_nodes, device}`` for `build_on_devices`, checked.

    Raises:
        ValueError: a value below 1.
    """
    from vpr.cli.flags import explicit_settings
    from vpr.hardware import single_device

    settings = explicit_settings(args)
    devices = _device_count(settings.get("devices", "auto"))
    num_nodes = getattr(args, "num_nodes", 1)
    if devices < 1 or num_nodes < 1:
        raise ValueError(f"--devices and --num_nodes must be >= 1, got {devices} and "
                         f"{num_nodes}")
    device = single_device(settings.get("accelerator", "auto"), settings.get("devices", "auto"))
    # Each rank picks its own device of this kind; a single process uses the one named.
    return {"devices": devices, "num_nodes": num_nodes,
            "device": str(device) if devices * num_nodes == 1 else device.type}
