"""`vpr export`: a model to ONNX or TorchScript (+ int8), with a sidecar and a parity check."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vpr.export.options import CALIBRATION_COUNT, CALIBRATIONS, DEFAULT_CALIBRATION

FORMATS = ("onnx", "torchscript")
SUFFIX_FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript",
                  ".torchscript": "torchscript"}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a model to ONNX or TorchScript for CPU deployment",
        description="Write the model of --ckpt_path as an ONNX graph or a TorchScript file "
                    "(dynamic batch size, the input size fixed), with a JSON sidecar beside "
                    "it (model identity, input size, mean/std, descriptor dimension); then "
                    "compare its descriptors with PyTorch eager's. --int8 also writes a "
                    "statically quantized ONNX model calibrated on --calibration_images.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt_path", help="a .ckpt file of vpr train")
    source.add_argument("--model", help="a named published model (see vpr.models.pretrained)")
    parser.add_argument("--weights", default=None,
                        help="with --model: a local file of its published weights")
    parser.add_argument("--out", required=True, type=Path,
                        help="the file to write, e.g. model.onnx or model.pt")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="onnx or torchscript (default: from --out's suffix, .pt/.ts = "
                             "torchscript, else onnx)")
    parser.add_argument("--image_size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="input size of the exported graph (default: the checkpoint's)")
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of images for the parity check (default: 8 synthetic "
                             "images)")
    parser.add_argument("--int8", action="store_true",
                        help="also write OUT's int8 version (ONNX only), e.g. model.int8.onnx")
    parser.add_argument("--calibration_images", type=Path, default=None,
                        help="with --int8: folder of images like the deployment's, searched "
                             "recursively (database and queries, every condition: day, "
                             "night...); --calibration_count of them, spread over the folder")
    parser.add_argument("--calibration_count", type=int, default=CALIBRATION_COUNT,
                        help=f"calibration images used at most (default: {CALIBRATION_COUNT})")
    parser.add_argument("--int8_calibration", choices=CALIBRATIONS, default=DEFAULT_CALIBRATION,
                        help="with --int8: how activation ranges are set from the calibration "
                             "images: minmax (the extremes seen) or percentile (clipped at the "
                             f"99.999th percentile) (default: {DEFAULT_CALIBRATION}, the one "
                             "that changed recall least in docs/BENCHMARKS.md)")
    parser.add_argument("--quantize_aggregator", action="store_true",
                        help="with --int8: quantize the aggregator too (default: backbone)")
    parser.add_argument("--test_path", type=Path, default=None,
                        help="with --int8: a test set (database/ + queries/) on which to print "
                             "R@1/R@5 of fp32 and int8")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.set_defaults(func=run, export_parser=parser)


def _format_of(args: argparse.Namespace) -> str:
    return args.format or SUFFIX_FORMATS.get(args.out.suffix.lower(), "onnx")


def _check_writable(path: Path) -> None:
    from vpr.export.sidecar import ExportError

    if path.is_dir():
        raise ExportError(f"--out {path}: is a folder; give a file name like model.onnx")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"--out {path}: cannot create its folder ({error.strerror})") from error
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ExportError(f"--out {path}: not writable")


def int8_path_of(path: Path) -> Path:
    """``model.onnx`` -> ``model.int8.onnx``."""
    return path.with_name(f"{path.stem}.int8{path.suffix or '.onnx'}")


def _size_mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def run(args: argparse.Namespace) -> int:
    from vpr.export import onnx_export, parity, source
    from vpr.export.sidecar import ExportError, make_sidecar, write_sidecar

    fmt = _format_of(args)
    if args.int8 and fmt != "onnx":
        raise ExportError("--int8 quantizes ONNX models: use an --out ending in .onnx")
    if args.int8 and args.calibration_images is None:
        raise ExportError("--int8 needs --calibration_images DIR (images like the ones the "
                          "model will describe)")
    if args.test_path is not None and not args.int8:
        raise ExportError("--test_path compares fp32 with int8: add --int8")
    _check_writable(args.out)
    size = tuple(args.image_size) if args.image_size else None
    if args.model:
        model_source = source.from_published(args.model, args.weights, size)
    else:
        model_source = source.from_checkpoint(args.ckpt_path, size)
    calibration = None
    if args.int8:  # read the calibration images first: an empty folder fails before work
        from vpr.export.quantize import calibration_images

        calibration = calibration_images(args.calibration_images, model_source.image_size,
                                         args.calibration_count)

    if fmt == "onnx":
        onnx_export.export_onnx(model_source, args.out, opset=args.opset)
        runner = parity.onnx_runner(args.out)
        kind = f"ONNX opset {args.opset}"
    else:
        onnx_export.export_torchscript(model_source, args.out)
        runner = parity.torchscript_runner(args.out)
        kind = "TorchScript"

    def sidecar(path: Path, runtime: str, quantization=None) -> Path:
        return write_sidecar(path, make_sidecar(
            path, runtime, model_source.identity, model_source.image_size, model_source.mean,
            model_source.std, model_source.descriptors_dim, quantization))

    side = sidecar(args.out, fmt)
    height, width = model_source.image_size
    print(f"Exported {args.out} ({kind}, {_size_mb(args.out)}, input (batch, 3, {height}, "
          f"{width}), {model_source.descriptors_dim}-D descriptors); sidecar {side}")

    images, _ = parity.load_images(args.images, model_source.image_size)
    inputs = parity.normalise(images, model_source.mean, model_source.std)
    eager = parity.describe(lambda batch: model_source.model(batch).numpy(), inputs)
    where = f"images of {args.images}" if args.images else "synthetic images"
    print(f"Parity with PyTorch eager on {where}: "
          f"{parity.compare(eager, parity.describe(runner, inputs))}")
    if not args.int8:
        return 0

    from vpr.export.quantize import quantize_int8

    int8_path = int8_path_of(args.out)
    quantize_int8(args.out, int8_path,
                  parity.normalise(calibration, model_source.mean, model_source.std),
                  calibration=args.int8_calibration,
                  quantize_aggregator=args.quantize_aggregator)
    quantization = {"type": "int8-static", "format": "QDQ", "per_channel": True,
                    "calibration": args.int8_calibration,
                    "calibration_images": len(calibration),
                    "calibration_folder": str(args.calibration_images.resolve()),
                    "aggregator_quantized": bool(args.quantize_aggregator),
                    "from": args.out.name}
    side = sidecar(int8_path, "onnx", quantization)
    print(f"int8: {int8_path} ({_size_mb(int8_path)}, calibrated ({args.int8_calibration}) on "
          f"{len(calibration)} images of {args.calibration_images}); sidecar {side}")
    int8_runner = parity.onnx_runner(int8_path)
    print(f"Parity of int8 with PyTorch eager on {where}: "
          f"{parity.compare(eager, parity.describe(int8_runner, inputs))}")
    if args.test_path is not None:
        from vpr.eval.metrics import format_recalls
        from vpr.export.recall import recall_of

        recalls = {name: recall_of(run_, args.test_path, model_source.image_size,
                                   model_source.mean, model_source.std)
                   for name, run_ in (("fp32", runner), ("int8", int8_runner))}
        change = recalls["int8"][1] - recalls["fp32"][1]
        print(f"Recall on {args.test_path}: fp32 {format_recalls(recalls['fp32'])}; "
              f"int8 {format_recalls(recalls['int8'])} (R@1 {change:+.1f} points)")
    return 0
