"""int8 static quantization of an exported ONNX model, calibrated on the user's images.

Static quantization fixes each activation's int8 scale from the ranges seen on calibration
images (min/max), so at run time no range is computed; weights are quantized per output
channel (their ranges differ a lot between channels of one convolution). The QDQ format
(QuantizeLinear/DequantizeLinear pairs around each op) is what ONNX Runtime fuses into int8
kernels on CPUs with VNNI/AMX. The aggregator (after the backbone) is kept in float by
default: it is a small share of the time and its output is the descriptor itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from vpr.export.sidecar import INPUT_NAME, ExportError


class ImageCalibrationReader:
    """Feeds calibration batches to `quantize_static` (the CalibrationDataReader protocol).

    Args:
        images: (N, 3, H, W) normalised float images.
        batch_size: images per calibration batch.
    """

    def __init__(self, images: torch.Tensor, batch_size: int = 8) -> None:
        self.images = images
        self.batch_size = batch_size
        self._batches: Iterator[dict[str, np.ndarray]] = iter(())
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = iter(
            {INPUT_NAME: np.ascontiguousarray(self.images[start : start + self.batch_size]
                                              .numpy(), np.float32)}
            for start in range(0, len(self.images), self.batch_size))


def _aggregator_nodes(model_path: Path) -> list[str]:
    """Names of the graph's nodes that belong to the aggregator (exported as /aggregator/...)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    return [node.name for node in graph.node if node.name.startswith("/aggregator/")]


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, images: torch.Tensor,
                  per_channel: bool = True, quantize_aggregator: bool = False) -> Path:
    """Writes the int8 (QDQ) version of ``fp32_path`` to ``int8_path``.

    Args:
        fp32_path: an ONNX file written by `export_onnx`.
        int8_path: where the quantized model goes (temporary name, then renamed).
        images: (N, 3, H, W) normalised float calibration images.
        per_channel: one weight scale per output channel (else one per tensor).
        quantize_aggregator: quantize the aggregator too (default: backbone only).

    Raises:
        ExportError: no calibration images.
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
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    prepared = int8_path.with_name(f".{int8_path.name}.{os.getpid()}.pre.onnx")
    temporary = int8_path.with_name(f".{int8_path.name}.{os.getpid()}.tmp")
    try:
        # Shape inference and graph folding first, as ONNX Runtime recommends: the quantizer
        # needs every tensor's shape, and folded BatchNorms quantize with the convolutions.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        excluded = [] if quantize_aggregator else _aggregator_nodes(prepared)
        quantize_static(
            str(prepared), str(temporary), ImageCalibrationReader(images),
            quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=excluded,
        )
        os.replace(temporary, int8_path)
    finally:
        prepared.unlink(missing_ok=True)
        temporary.unlink(missing_ok=True)
    return int8_path
