"""int8 static quantization of an exported ONNX model, calibrated on the user's images.

Static quantization fixes each activation's int8 scale from the ranges seen on calibration
images, so at run time no range is computed; weights are quantized per output channel
(their ranges differ a lot between channels of one convolution). The QDQ format
(QuantizeLinear/DequantizeLinear pairs around each op) is what ONNX Runtime fuses into int8
kernels on CPUs with VNNI/AMX. The aggregator (after the backbone) is kept in float: it is a
small share of the time and its output is the descriptor itself.

How the activation ranges are chosen (``calibration``): ``minmax`` takes the extremes seen,
``percentile`` clips each tensor's range symmetrically at the 99.999th percentile of its
magnitudes (so rare outliers do not stretch the steps of every other value). The default
is the one measured to change R@1 least on the synthetic SF-like and Tokyo-like sets
(docs/BENCHMARKS.md, export).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from vpr.export.options import CALIBRATIONS, DEFAULT_CALIBRATION
from vpr.export.sidecar import INPUT_NAME, ExportError

# Graph node name prefixes kept in float by default (the legacy exporter names each node by
# its module path): the aggregator.
KEEP_FLOAT = ("/aggregator/",)


class ImageCalibrationReader:
    """Feeds calibration batches to `quantize_static` (the CalibrationDataReader protocol).

    Every batch has the same size, the largest divisor of N up to ``batch_size``: the
    histogram calibrators (percentile) stack each tensor's outputs over batches and fail on
    a shorter last batch.

    Args:
        images: (N, 3, H, W) normalised float images.
        batch_size: images per calibration batch at most.
    """

    def __init__(self, images: torch.Tensor, batch_size: int = 8) -> None:
        self.images = images
        self.batch_size = max(size for size in range(1, max(1, batch_size) + 1)
                              if len(images) % size == 0) if len(images) else 1
        self._batches: Iterator[dict[str, np.ndarray]] = iter(())
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = iter(
            {INPUT_NAME: np.ascontiguousarray(self.images[start : start + self.batch_size]
                                              .numpy(), np.float32)}
            for start in range(0, len(self.images), self.batch_size))


def spread(count: int, total: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (all of them if fewer)."""
    if count >= total:
        return list(range(total))
    return sorted({int(round(value)) for value in np.linspace(0, total - 1, count)})


def calibration_images(folder: str | Path, image_size: tuple[int, int],
                       count: int) -> torch.Tensor:
    """Up to ``count`` images of ``folder`` (searched recursively), as uint8 (N, 3, H, W).

    The images are spread evenly over the folder's sorted list, not its first ones: file
    lists sort by folder and by name (an @-name starts with the position), so the first
    images would all come from one folder (a database, not its queries) and one street.

    Raises:
        ExportError: not a folder, or no images in it.
    """
    from vpr.data.images import list_images
    from vpr.inputs.decode import UInt8Reader

    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"--calibration_images {folder}: not a folder of images")
    try:
        paths = list_images(folder)
    except ValueError:  # list_images refuses a folder without images
        paths = []
    if not paths:
        raise ExportError(f"--calibration_images {folder}: no images in it (jpg, png...)")
    reader = UInt8Reader(image_size)
    return torch.stack([reader(paths[index]) for index in spread(count, len(paths))])


def nodes_kept_float(model_path: str | Path,
                     prefixes: Sequence[str] = KEEP_FLOAT) -> list[str]:
    """Names of the graph's nodes under ``prefixes`` (module paths, e.g. ``/aggregator/``)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    return [node.name for node in graph.node
            if any(node.name.startswith(prefix) for prefix in prefixes)]


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, images: torch.Tensor,
                  calibration: str = DEFAULT_CALIBRATION, per_channel: bool = True,
                  quantize_aggregator: bool = False) -> Path:
    """Writes the int8 (QDQ) version of ``fp32_path`` to ``int8_path``.

    Args:
        fp32_path: an ONNX file written by `export_onnx`.
        int8_path: where the quantized model goes (temporary name, then renamed).
        images: (N, 3, H, W) normalised float calibration images.
        calibration: how activation ranges are set, one of `CALIBRATIONS`.
        per_channel: one weight scale per output channel (else one per tensor).
        quantize_aggregator: quantize the aggregator too (default: backbone only).

    Raises:
        ExportError: no calibration images, or an unknown calibration method.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(images) == 0:
        raise ExportError("no calibration images")
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
    if calibration not in methods:
        raise ExportError(f"--int8_calibration {calibration}: expected one of "
                          f"{', '.join(CALIBRATIONS)}")
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    prepared = int8_path.with_name(f".{int8_path.name}.{os.getpid()}.pre.onnx")
    temporary = int8_path.with_name(f".{int8_path.name}.{os.getpid()}.tmp")
    try:
        # Shape inference and graph folding first, as ONNX Runtime recommends: the quantizer
        # needs every tensor's shape, and folded BatchNorms quantize with the convolutions.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        excluded = [] if quantize_aggregator else nodes_kept_float(prepared)
        # The histogram calibrators print their progress (tensor counts, bins) to stdout.
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(prepared), str(temporary), ImageCalibrationReader(images),
                quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=methods[calibration], nodes_to_exclude=excluded,
            )
        os.replace(temporary, int8_path)
    finally:
        prepared.unlink(missing_ok=True)
        temporary.unlink(missing_ok=True)
    return int8_path
