"""Local features of one image, and the interface every local-feature method implements.

A method extracts `LocalFeatures` from image files and matches two sets of them; the
geometric verifier (`vpr.rerank.verify`) then counts the matches one camera motion explains.
A learned matcher (e.g. LightGlue or LoFTR with local weights) fits the same interface: its
``match`` sees both images' features at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


@dataclass
class LocalFeatures:
    """Keypoints of one image with a descriptor each.

    Attributes:
        keypoints: (n, 2) float32 x, y in the original image's pixel coordinates.
        descriptors: (n, d) float (L2-normalised) or uint8 (binary, packed bits) descriptors.
        cell_px: how coarsely the keypoints are placed (a dense grid's cell size in pixels;
            0 for detected keypoints); the verifier's reprojection tolerance is at least this.
    """

    keypoints: np.ndarray
    descriptors: np.ndarray
    cell_px: float = 0.0

    def __len__(self) -> int:
        return len(self.keypoints)

    @classmethod
    def empty(cls, dim: int, dtype: Any = np.float32) -> LocalFeatures:
        """No keypoints (a blank image, or a detector that found nothing)."""
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, dim), dtype))


class LocalFeatureMethod(ABC):
    """Extracts local features from images and matches two images' features.

    Subclasses set ``name`` and implement `extract`, `match` and `identity`.
    """

    name: ClassVar[str]

    @abstractmethod
    def extract(self, paths: Sequence[str | Path]) -> list[LocalFeatures]:
        """The local features of each image file, in order."""

    @abstractmethod
    def match(self, query: LocalFeatures, candidate: LocalFeatures) -> np.ndarray:
        """Putative correspondences: (m, 2) int indices (query keypoint, candidate keypoint)."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-ready settings that determine the features (the cache's key): the method's
        name and options, and the model's identity for learned features."""
