"""Descriptors through ONNX Runtime: `OnnxExtractor`, and choosing a runtime per command.

`OnnxExtractor` has the call shape of the torch model that `vpr.eval.extract` runs (an
``nn.Module`` mapping (B, 3, H, W) normalised float images to (B, D) descriptors, with an
``input_transform`` that turns uint8 batches into them), so every extraction path
(`extract_descriptors`, `vpr index build/add`, `vpr locate`, `vpr serve`) runs it unchanged.

A location index records the runtime and the exported file (sha256) that made its
descriptors; a later command must describe photos the same way (`extractor_for_index`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vpr.export.options import RuntimeChoice
from vpr.export.session import cpu_session
from vpr.export.sidecar import ExportError, file_sha256, read_sidecar


class OnnxExtractor(nn.Module):
    """An exported ONNX model run by ONNX Runtime on the CPU, shaped like a `VPRModel`.

    Args:
        path: a ``.onnx`` file written by `vpr export` (its sidecar beside it).
        threads: intra-op threads (default: one per physical core this process may use).

    Raises:
        ExportError: no sidecar, or the file does not match it.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        from vpr.inputs.batch_augment import InputTransform

        super().__init__()
        self.path = Path(path)
        self.sidecar = read_sidecar(self.path)
        if self.sidecar["runtime"] != "onnx":
            raise ExportError(f"{self.path}: a {self.sidecar['runtime']} export, not ONNX")
        spec = self.sidecar["input"]
        self.image_size = (int(spec["height"]), int(spec["width"]))
        self.descriptors_dim = int(self.sidecar["output"]["dim"])
        self.input_name = spec["name"]
        self.output_name = self.sidecar["output"]["name"]
        self.input_transform = InputTransform(mean=tuple(spec["mean"]), std=tuple(spec["std"]))
        self.session = cpu_session(self.path, threads)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised float images (any device) -> (B, D) float32 on the CPU."""
        if tuple(images.shape[-2:]) != self.image_size:
            raise ExportError(
                f"{self.path.name} takes {self.image_size[0]}x{self.image_size[1]} images, got "
                f"{images.shape[-2]}x{images.shape[-1]}: read images at the exported size")
        array = np.ascontiguousarray(images.detach().float().cpu().numpy())
        (descriptors,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(descriptors)

    def identity(self) -> dict[str, Any]:
        """What an index records about this runtime (compared on every later use)."""
        return {"name": "onnx", "model": str(self.path.resolve()),
                "sha256": self.sidecar["sha256"],
                "quantization": (self.sidecar.get("quantization") or {}).get("type")}


# ---- choosing the extractor of an index


def _wants_onnx(choice: RuntimeChoice, has_model: bool, device: str) -> bool:
    # Measured on the 2-core CPU VM (docs/BENCHMARKS.md, export): ONNX Runtime fp32 is
    # 1.14x torch eager fp32 on free cores (0.8x eager bf16 where the CPU computes bf16) and
    # several times faster on shared ones; int8 ~3x more. So auto takes it wherever a model
    # is given and extraction is on the CPU; on a GPU, torch.
    if choice.name == "auto":
        return has_model and device == "cpu"
    return choice.name == "onnx"


def extractor_for_build(choice: RuntimeChoice | None, module: nn.Module,
                        model_meta: dict[str, Any], device: str
                        ) -> tuple[nn.Module, dict[str, Any]]:
    """The extractor of a new index, and what the index records about it.

    Args:
        choice: the options; None is torch.
        module: the checkpoint's model (used by torch).
        model_meta: the index's ``model`` record (checkpoint path and sha256).
        device: where extraction runs (``cpu``, ``cuda``...).

    Raises:
        ExportError: ``onnx`` without ``onnx_model``, or a model exported from another
            checkpoint.
    """
    choice = choice or RuntimeChoice(name="torch")
    if not _wants_onnx(choice, choice.onnx_model is not None, device):
        return module, {"name": "torch"}
    if choice.onnx_model is None:
        raise ExportError("runtime 'onnx' needs onnx_model, a .onnx file of `vpr export`")
    extractor = OnnxExtractor(choice.onnx_model, choice.threads)
    source = extractor.sidecar.get("source", {})
    if source.get("sha256") != model_meta["sha256"]:
        # A checkpoint, or a published model's weights file (`vpr export --model`).
        exported = source.get("checkpoint") or source.get("weights")
        wanted = model_meta.get("checkpoint") or model_meta.get("weights")
        raise ExportError(
            f"{choice.onnx_model} was exported from {exported}, not from {wanted} (sha256 "
            "differs): export this model")
    # The graph's input size is the size the index's images are read at (it can differ from
    # the checkpoint's when exported with --image_size, and is set when that was native).
    model_meta["image_size"] = list(extractor.image_size)
    return extractor, extractor.identity()


def extractor_for_index(choice: RuntimeChoice | None, model_meta: dict[str, Any],
                        index_path: Path) -> nn.Module | None:
    """The extractor that describes photos as the index's descriptors were made.

    Returns:
        An `OnnxExtractor` for an index built with ONNX Runtime; None for a torch index
        (the caller loads the checkpoint).

    Raises:
        ExportError: a runtime or an exported file other than the index's.
    """
    choice = choice or RuntimeChoice()
    recorded = model_meta.get("runtime") or {"name": "torch"}  # indexes before runtimes
    if choice.name not in ("auto", recorded["name"]):
        raise ExportError(
            f"index {index_path} was built with runtime {recorded['name']!r}"
            + (f" ({recorded.get('model')})" if recorded["name"] == "onnx" else "")
            + f"; describing photos with runtime {choice.name!r} would mix descriptors of two "
            "models: use runtime 'auto', or build another index")
    if recorded["name"] == "torch":
        if choice.onnx_model is not None:
            raise ExportError(f"onnx_model: index {index_path} was built with torch, not an "
                              "exported model; leave onnx_model out")
        return None
    path = Path(choice.onnx_model or recorded["model"])
    if not path.is_file():
        raise ExportError(f"{path}: the exported model of index {index_path} is not there; "
                          "pass onnx_model with its current location")
    if file_sha256(path) != recorded["sha256"]:
        raise ExportError(
            f"{path} is not the exported model index {index_path} was built with "
            f"({recorded['model']}, sha256 {recorded['sha256'][:12]}...): its descriptors "
            "would not be comparable")
    return OnnxExtractor(path, choice.threads)
