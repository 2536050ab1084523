"""Writing a model as an ONNX graph, dynamic in batch size, checked by `onnx.checker`.

torch 2.14's default exporter (``dynamo=True``) needs the onnxscript package, which vpr does
not depend on; the TorchScript-based exporter (``dynamo=False``) handles the ResNet and
aggregator graphs of vpr, so it is the one used. Its one known limit for our models:
adaptive average pooling (ConvAP, CosPlace's GeM is fine) exports only when the pooled size
divides the feature map, which fixes the input size to multiples of it; the error says so.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from vpr.export.sidecar import INPUT_NAME, OUTPUT_NAME, ExportError
from vpr.export.source import ExportSource

OPSET = 17


def export_onnx(source: ExportSource, path: str | Path, opset: int = OPSET) -> Path:
    """Exports ``source.model`` to ``path`` (written under a temporary name, then renamed).

    Raises:
        ExportError: the graph cannot be exported at this input size, or fails the checker.
    """
    import onnx

    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    example = torch.zeros(2, 3, *source.image_size)
    try:
        with warnings.catch_warnings():
            # The legacy exporter announces its own deprecation on every call.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                source.model, (example,), str(temporary), dynamo=False,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        onnx.checker.check_model(str(temporary), full_check=True)
        os.replace(temporary, path)
    except torch.onnx.errors.OnnxExporterError as error:
        first = str(error).splitlines()[0]
        if "adaptive_avg_pool2d" in first:
            raise ExportError(
                f"cannot export at input size {source.image_size[0]}x{source.image_size[1]}: "
                "the aggregator's adaptive pooling must divide the backbone's feature map "
                "(e.g. sizes that are multiples of 64 for ResNet + ConvAP 2x2); pass "
                "--image_size H W") from error
        raise ExportError(f"ONNX export failed: {first}") from error
    except onnx.checker.ValidationError as error:
        raise ExportError(f"the exported graph fails onnx.checker: "
                          f"{str(error).splitlines()[0]}") from error
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def export_torchscript(source: ExportSource, path: str | Path) -> Path:
    """Traces ``source.model`` to a TorchScript file (``torch.jit.load`` runs it, any batch).

    Tracing records the operations of one forward pass; vpr models have no data-dependent
    control flow in eval mode, so the trace holds for any batch size (checked by `parity`).
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    example = torch.zeros(2, 3, *source.image_size)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            # The aggregators' shape check reads tensor sizes in Python: a warning only.
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            traced = torch.jit.trace(source.model, (example,), check_trace=False)
            traced.save(str(temporary))
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path
