"""The --runtime options of `vpr index build/add`, `vpr locate` and `vpr serve`, and the
int8 calibration names of `vpr export`.

Kept free of heavy imports (torch, onnxruntime): every `vpr` command builds these parsers.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

RUNTIMES = ("auto", "torch", "onnx")
# How `vpr export --int8` sets activation ranges (vpr.export.quantize); the default is the
# one measured to change R@1 least (docs/BENCHMARKS.md, export). ONNX Runtime's "entropy"
# is not offered: quantize_static builds its histogram with as many bins as it quantizes to
# (128 and 128), so the only threshold it tries is the whole range, min/max's.
CALIBRATIONS = ("minmax", "percentile")
DEFAULT_CALIBRATION = "percentile"
CALIBRATION_COUNT = 128


@dataclass(frozen=True)
class RuntimeChoice:
    """What the user asked for: ``auto``/``torch``/``onnx`` and an exported model, if any."""

    name: str = "auto"
    onnx_model: Path | None = None
    threads: int | None = None


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """Adds --runtime, --onnx_model and --onnx_threads (index build/add, locate, serve)."""
    parser.add_argument(
        "--runtime", choices=RUNTIMES, default="auto",
        help="what computes descriptors: torch (the checkpoint), onnx (an exported model, "
             "ONNX Runtime on the CPU), or auto (default: onnx when an exported model is "
             "given or recorded in the index and the device is the CPU, else torch)")
    parser.add_argument(
        "--onnx_model", type=Path, default=None,
        help="a .onnx file of `vpr export` made from the index's checkpoint (for index add, "
             "locate, serve: where the index's exported model is now, if it moved)")
    parser.add_argument("--onnx_threads", type=int, default=None,
                        help="ONNX Runtime threads (default: one per physical core)")


def runtime_from_args(args: argparse.Namespace) -> RuntimeChoice:
    """The `RuntimeChoice` of the options `add_runtime_options` added."""
    return RuntimeChoice(name=getattr(args, "runtime", "auto"),
                         onnx_model=getattr(args, "onnx_model", None),
                         threads=getattr(args, "onnx_threads", None))
