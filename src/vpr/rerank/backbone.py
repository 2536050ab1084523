"""Dense local features from the VPR model's own backbone: no outside weights needed.

Every cell of an intermediate feature map is a keypoint at the cell's centre (in the
original image's pixel coordinates) with the cell's L2-normalised channel vector as its
descriptor. Matches are mutual nearest neighbours by cosine similarity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import functional as TF

from vpr.rerank.features import LocalFeatureMethod, LocalFeatures
from vpr.rerank.matching import mutual_nearest_neighbours
from vpr.rerank.registry import register_method

LAYERS = ("layer1", "layer2", "layer3", "layer4")


class BackboneFeatures(LocalFeatureMethod):
    """Cells of the backbone's ``layer`` output as keypoints (see the module docstring).

    Args:
        model: a `VPRModule` or `VPRModel` (its ``backbone`` is used, frozen, in eval mode).
        layer: the ResNet stage whose output is read; an earlier stage gives more, finer
            cells (layer2: stride 8; layer3: stride 16).
        image_size: (H, W) the images are resized to first; default the model's
            ``hparams.image_size`` (None: native size, as the model's evaluation).
        min_similarity: mutual neighbours less similar than this are not matched.
        batch_size: images per forward pass.
    """

    name = "backbone"

    def __init__(self, model: Any, layer: str = "layer2",
                 image_size: Sequence[int] | None = None, min_similarity: float = 0.0,
                 batch_size: int = 32) -> None:
        if model is None:
            raise ValueError("the 'backbone' re-ranking method needs the VPR model")
        if layer not in LAYERS:
            raise ValueError(f"unknown backbone layer {layer!r}; valid: {', '.join(LAYERS)}")
        vpr_model = getattr(model, "model", model)
        backbone = getattr(vpr_model, "backbone", None)
        if backbone is None:  # e.g. an exported ONNX model (--runtime onnx): a graph only
            raise ValueError("the 'backbone' re-ranking method needs the torch model's "
                             "backbone, which an exported ONNX model does not expose: use "
                             "the 'sift' or 'orb' method")
        names = [name for name, _ in backbone.named_children()]
        if layer not in names:
            raise ValueError(f"the model's backbone stops at {names[-1]}: it has no {layer}; "
                             f"valid: {', '.join(n for n in names if n in LAYERS)}")
        self.stages = [module for _, module in list(backbone.named_children())
                       [: names.index(layer) + 1]]
        self.layer = layer
        if image_size is None:
            hparams = getattr(model, "hparams", {}) or {}
            image_size = hparams.get("image_size")
        self.image_size = tuple(int(v) for v in image_size) if image_size else None
        self.min_similarity = min_similarity
        self.batch_size = batch_size
        self._transform = getattr(model, "input_transform", None)
        self._weights_sha256 = _weights_digest(self.stages)

    def identity(self) -> dict[str, Any]:
        return {"method": self.name, "layer": self.layer,
                "image_size": list(self.image_size) if self.image_size else None,
                "weights_sha256": self._weights_sha256}

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if self._transform is not None:
            return self._transform.to(images.device)(images, augment=False)
        mean = torch.tensor([0.485, 0.456, 0.406], device=images.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=images.device).view(1, 3, 1, 1)
        return (images.float() / 255.0 - mean) / std

    @torch.inference_mode()
    def extract(self, paths: Sequence[str | Path]) -> list[LocalFeatures]:
        from vpr.inputs.decode import read_uint8

        features: list[LocalFeatures] = []
        for start in range(0, len(paths), self.batch_size):
            natives, images = [], []
            for path in paths[start:start + self.batch_size]:
                image = read_uint8(path)
                natives.append(tuple(image.shape[-2:]))
                if self.image_size is not None and tuple(image.shape[-2:]) != self.image_size:
                    image = TF.resize(image, list(self.image_size), antialias=True)
                images.append(image)
            # Images of different shapes (native sizes) cannot share a batch.
            shapes: dict[tuple[int, ...], list[int]] = {}
            for i, image in enumerate(images):
                shapes.setdefault(tuple(image.shape), []).append(i)
            groups = list(shapes.values())
            batch_features: dict[int, LocalFeatures] = {}
            for group in groups:
                maps = self._forward(torch.stack([images[i] for i in group]))
                for row, i in enumerate(group):
                    batch_features[i] = _cells(maps[row], natives[i])
            features.extend(batch_features[i] for i in range(len(images)))
        return features

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        stages = self.stages
        training = [stage.training for stage in stages]
        for stage in stages:
            stage.eval()
        device = next(self.stages[0].parameters()).device
        try:
            features = self._prepare(images.to(device)).float()
            for stage in stages:
                features = stage(features)
        finally:
            for stage, mode in zip(stages, training):
                stage.train(mode)
        return F.normalize(features.float(), dim=1)

    def match(self, query: LocalFeatures, candidate: LocalFeatures) -> np.ndarray:
        return mutual_nearest_neighbours(query.descriptors, candidate.descriptors,
                                         self.min_similarity)


def _cells(feature_map: torch.Tensor, native_size: tuple[int, int]) -> LocalFeatures:
    """Keypoints at the cell centres of a (C, h, w) map, scaled to the native (H, W)."""
    channels, rows, columns = feature_map.shape
    height, width = native_size
    ys, xs = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    keypoints = np.column_stack([(xs.ravel() + 0.5) * width / columns,
                                 (ys.ravel() + 0.5) * height / rows]).astype(np.float32)
    descriptors = feature_map.reshape(channels, -1).T.contiguous().cpu().numpy()
    return LocalFeatures(keypoints, descriptors.astype(np.float32),
                         cell_px=float(max(width / columns, height / rows)))


def _weights_digest(stages: Sequence[torch.nn.Module]) -> str:
    """sha256 of the weights the features depend on: new weights invalidate cached features."""
    digest = hashlib.sha256()
    for number, stage in enumerate(stages):
        for name, tensor in stage.state_dict().items():
            digest.update(f"{number}.{name}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@register_method("backbone")
def _backbone(model: Any = None, **options: Any) -> BackboneFeatures:
    return BackboneFeatures(model, **options)
