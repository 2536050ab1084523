"""Exporting vpr models for deployment: ONNX and TorchScript files, int8, ONNX Runtime.

- `source`: the model to export (a vpr checkpoint; named published models later);
- `onnx_export` / `torchscript_export`: write the graph, dynamic in batch size;
- `sidecar`: the small JSON beside each file (identity, input size, mean/std, dimension);
- `parity`: descriptors of the exported file vs PyTorch eager;
- `quantize`: int8 static quantization of an ONNX file (QDQ, calibrated on images);
- `runtime`: `OnnxExtractor`, the ONNX Runtime drop-in for the torch model in extraction.
"""

from vpr.export.sidecar import ExportError, read_sidecar, sidecar_path

__all__ = ["ExportError", "read_sidecar", "sidecar_path"]
