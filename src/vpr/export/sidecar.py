"""The JSON file beside an exported model: all a runtime needs to use it without vpr's checkpoint.

``model.onnx`` gets ``model.onnx.json``::

    {"format": "vpr-exported-model", "format_version": 1,
     "runtime": "onnx" | "torchscript", "file": "model.onnx", "sha256": "...",
     "source": {"checkpoint": "/abs/best.ckpt", "sha256": "...", "backbone": "resnet18",
                "agg_arch": "ConvAP"},
     "input": {"name": "images", "layout": "NCHW", "dtype": "float32", "height": 192,
               "width": 256, "channels": "RGB", "scale": "1/255",
               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
     "output": {"name": "descriptors", "dim": 512, "l2_normalized": true},
     "batch": "dynamic", "quantization": null | {"type": "int8-static", ...},
     "vpr_version": "...", "created": "..."}

A runtime reads RGB pixels, scales them to [0, 1], resizes to height x width, subtracts
``mean`` and divides by ``std`` per channel, and feeds (B, 3, H, W) float32.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from vpr.utils.hashing import file_sha256

FORMAT = "vpr-exported-model"
FORMAT_VERSION = 1
INPUT_NAME = "images"
OUTPUT_NAME = "descriptors"


class ExportError(ValueError):
    """A model, file or folder that cannot be exported or used as asked."""


def sidecar_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``: the suffix is kept so that two formats of one
    model (``model.onnx``, ``model.pt``) each get their own sidecar."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def make_sidecar(model_path: Path, runtime: str, source: dict[str, Any],
                 image_size: tuple[int, int], mean: list[float], std: list[float],
                 descriptors_dim: int, quantization: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The sidecar's content for the exported file ``model_path`` (which must exist)."""
    import vpr

    height, width = image_size
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "runtime": runtime,
        "file": model_path.name,
        "sha256": file_sha256(model_path),
        "source": source,
        "input": {"name": INPUT_NAME, "layout": "NCHW", "dtype": "float32",
                  "height": int(height), "width": int(width), "channels": "RGB",
                  "scale": "1/255", "mean": [float(v) for v in mean],
                  "std": [float(v) for v in std]},
        "output": {"name": OUTPUT_NAME, "dim": int(descriptors_dim), "l2_normalized": True},
        "batch": "dynamic",
        "quantization": quantization,
        "vpr_version": vpr.__version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write_sidecar(model_path: Path, content: dict[str, Any]) -> Path:
    """Writes ``content`` beside ``model_path`` atomically; returns the sidecar's path."""
    from vpr.utils.atomic import write_bytes_atomic

    path = sidecar_path(model_path)
    write_bytes_atomic(path, (json.dumps(content, indent=1) + "\n").encode())
    return path


def read_sidecar(model_path: str | Path, check_hash: bool = True) -> dict[str, Any]:
    """The sidecar of an exported model, checked against the model file.

    Raises:
        ExportError: no sidecar, not ours, or (``check_hash``) the model file changed since.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ExportError(f"{model_path}: exported model not found")
    path = sidecar_path(model_path)
    if not path.is_file():
        raise ExportError(f"{model_path}: no sidecar {path.name} beside it; export the model "
                          "with `vpr export`, which writes both")
    try:
        content = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ExportError(f"{path}: unreadable sidecar ({error})") from error
    if content.get("format") != FORMAT or content.get("format_version", 0) > FORMAT_VERSION:
        raise ExportError(f"{path}: not a sidecar of format {FORMAT} version <= "
                          f"{FORMAT_VERSION}")
    if check_hash and content.get("sha256") != file_sha256(model_path):
        raise ExportError(f"{model_path} does not match its sidecar {path.name} (sha256 "
                          "differs): the file was changed after export; export it again")
    return content
