"""How close an exported model's descriptors are to PyTorch eager's, on the same images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vpr.export.sidecar import ExportError


@dataclass
class Parity:
    """Exported vs eager descriptors of ``images`` images.

    Attributes:
        max_abs_diff: largest absolute difference of any descriptor component.
        top1_agreement: percentage of images whose nearest other image is the same by both.
        topk_agreement: mean percentage overlap of each image's k nearest other images.
        k: the k of ``topk_agreement``.
    """

    images: int
    max_abs_diff: float
    top1_agreement: float
    topk_agreement: float
    k: int

    def __str__(self) -> str:
        return (f"{self.images} images: max |difference| {self.max_abs_diff:.2e}; nearest "
                f"neighbour the same for {self.top1_agreement:.1f}% of images, top-{self.k} "
                f"overlap {self.topk_agreement:.1f}%")


def load_images(folder: str | Path | None, image_size: tuple[int, int], limit: int = 64,
                seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """Up to ``limit`` images of ``folder`` as uint8 (N, 3, H, W), or random ones if None.

    Raises:
        ExportError: a folder without images.
    """
    from vpr.data.images import list_images
    from vpr.inputs.decode import UInt8Reader

    if folder is None:
        generator = torch.Generator().manual_seed(seed)
        # Smooth random images (low-resolution noise upsampled) look more like photos to a
        # network than white noise, so their descriptors spread out as real ones do.
        small = torch.rand(8, 3, 6, 8, generator=generator)
        images = torch.nn.functional.interpolate(small, size=image_size, mode="bilinear")
        return (images * 255).round().to(torch.uint8), []
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder}: not a folder of images")
    paths = list_images(folder)[:limit]
    if not paths:
        raise ExportError(f"{folder}: no images in it (jpg, png...)")
    reader = UInt8Reader(image_size)
    return torch.stack([reader(path) for path in paths]), [str(path) for path in paths]


def normalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> the float input of an exported model."""
    mean_t = torch.tensor(list(mean)).view(1, 3, 1, 1)
    std_t = torch.tensor(list(std)).view(1, 3, 1, 1)
    return (images.float() / 255 - mean_t) / std_t


def describe(run: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
             batch_size: int = 16) -> np.ndarray:
    """Descriptors of float ``images`` by ``run``, ``batch_size`` at a time."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            out.append(np.asarray(run(images[start : start + batch_size]), np.float32))
    return np.concatenate(out)


def _neighbours(descriptors: np.ndarray, k: int) -> np.ndarray:
    similarities = descriptors @ descriptors.T
    np.fill_diagonal(similarities, -np.inf)  # an image is not its own neighbour
    return np.argsort(-similarities, axis=1, kind="stable")[:, :k]


def compare(reference: np.ndarray, candidate: np.ndarray, k: int = 5) -> Parity:
    """Compares two (N, D) descriptor sets of the same images."""
    if reference.shape != candidate.shape:
        raise ExportError(f"descriptor shapes differ: {reference.shape} vs {candidate.shape}")
    count = len(reference)
    k = max(1, min(k, count - 1))
    if count < 2:
        return Parity(count, float(np.abs(reference - candidate).max(initial=0.0)), 100.0,
                      100.0, k)
    first, second = _neighbours(reference, k), _neighbours(candidate, k)
    overlap = [len(set(a) & set(b)) / k for a, b in zip(first, second, strict=True)]
    return Parity(
        images=count,
        max_abs_diff=float(np.abs(reference - candidate).max()),
        top1_agreement=float((first[:, 0] == second[:, 0]).mean() * 100),
        topk_agreement=float(np.mean(overlap) * 100),
        k=k,
    )


def onnx_runner(path: str | Path, threads: int | None = None) -> Callable:
    """A function: float images -> descriptors, by ONNX Runtime on ``path`` (no sidecar
    needed, so that a file can be checked before its sidecar is written)."""
    from vpr.export.session import cpu_session

    session = cpu_session(path, threads)
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images.numpy()})[0]


def torchscript_runner(path: str | Path) -> Callable:
    """A function: float images -> descriptors, by the TorchScript file ``path``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)  # "use torch.export"
        module = torch.jit.load(str(path), map_location="cpu").eval()
    return lambda images: module(images).numpy()
