"""Writing a model as an ONNX graph, dynamic in batch size, checked by `onnx.checker`.

torch 2.14's default exporter (``dynamo=True``) needs the onnxscript package, which vpr does
not depend on; the TorchScript-based exporter (``dynamo=False``) handles the ResNet and
aggregator graphs of vpr, so it is the one used. It exports adaptive average pooling
(ConvAP) only when the pooled size divides the feature map; since the input size is fixed,
each such pooling is first replaced by the same windows written out as slices and means
(`FixedAdaptiveAvgPool2d`), which export at any size and compute the same values.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from vpr.export.sidecar import INPUT_NAME, OUTPUT_NAME, ExportError
from vpr.export.source import ExportSource

OPSET = 17


class FixedAdaptiveAvgPool2d(nn.Module):
    """`nn.AdaptiveAvgPool2d` for one known input size, as explicit windows.

    Adaptive pooling's window ``i`` of ``n`` over a side of length ``L`` spans
    ``[floor(i L / n), ceil((i + 1) L / n))`` (windows may overlap when n does not divide L).
    """

    def __init__(self, input_size: tuple[int, int], output_size: tuple[int, int]) -> None:
        super().__init__()

        def windows(length: int, count: int) -> list[tuple[int, int]]:
            return [(math.floor(i * length / count), math.ceil((i + 1) * length / count))
                    for i in range(count)]

        self.rows = windows(input_size[0], output_size[0])
        self.cols = windows(input_size[1], output_size[1])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack([
            torch.stack([features[:, :, top:bottom, left:right].mean(dim=(2, 3))
                         for left, right in self.cols], dim=-1)
            for top, bottom in self.rows], dim=-2)


def exportable(model: nn.Module, image_size: tuple[int, int]) -> nn.Module:
    """A copy of ``model`` with each adaptive average pooling fixed to its input size."""
    model = copy.deepcopy(model).eval()
    sizes: dict[str, tuple[int, int]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.AdaptiveAvgPool2d):
            hooks.append(module.register_forward_pre_hook(
                lambda _m, inputs, name=name: sizes.__setitem__(name, tuple(inputs[0].shape[-2:]))))
    with torch.no_grad():
        model(torch.zeros(1, 3, *image_size))
    for hook in hooks:
        hook.remove()
    for name, size in sizes.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        pool = getattr(parent, child)
        out = pool.output_size if isinstance(pool.output_size, tuple) else (pool.output_size,) * 2
        out = tuple(size[i] if value is None else int(value) for i, value in enumerate(out))
        setattr(parent, child, FixedAdaptiveAvgPool2d(size, out))
    return model


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
                exportable(source.model, source.image_size), (example,), str(temporary),
                dynamo=False,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        onnx.checker.check_model(str(temporary), full_check=True)
        os.replace(temporary, path)
    except torch.onnx.errors.OnnxExporterError as error:
        first = str(error).splitlines()[0]
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
