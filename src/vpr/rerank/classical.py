"""Classical local features from OpenCV: SIFT (ratio test) and ORB (cross-checked Hamming).

Small images (the synthetic city's are 96 x 72) give detectors almost nothing to find, so
images whose shorter side is below ``min_side`` are enlarged first; keypoints are reported
in the original image's coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vpr.rerank.features import LocalFeatureMethod, LocalFeatures
from vpr.rerank.matching import cross_check_matches, ratio_test_matches
from vpr.rerank.registry import register_method


class _OpenCVFeatures(LocalFeatureMethod):
    binary = False

    def __init__(self, max_keypoints: int = 1000, min_side: int = 240,
                 max_side: int = 640) -> None:
        if min_side > max_side:
            raise ValueError(f"min_side {min_side} exceeds max_side {max_side}")
        self.max_keypoints = max_keypoints
        self.min_side = min_side
        self.max_side = max_side

    def identity(self) -> dict[str, Any]:
        return {"method": self.name, "max_keypoints": self.max_keypoints,
                "min_side": self.min_side, "max_side": self.max_side,
                "opencv": cv2.__version__}

    def _detector(self) -> Any:
        raise NotImplementedError

    def extract(self, paths: Sequence[str | Path]) -> list[LocalFeatures]:
        from vpr.inputs.decode import read_uint8

        detector = self._detector()
        features = []
        for path in paths:
            gray = cv2.cvtColor(read_uint8(path).permute(1, 2, 0).numpy(), cv2.COLOR_RGB2GRAY)
            scale = _scale(gray.shape, self.min_side, self.max_side)
            if scale != 1.0:
                gray = cv2.resize(gray, None, fx=scale, fy=scale,
                                  interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
            keypoints, descriptors = detector.detectAndCompute(gray, None)
            if descriptors is None or not keypoints:
                features.append(LocalFeatures.empty(detector.descriptorSize(),
                                                    np.uint8 if self.binary else np.float32))
                continue
            points = np.array([keypoint.pt for keypoint in keypoints], np.float32) / scale
            features.append(LocalFeatures(points, descriptors))
        return features


class SIFTFeatures(_OpenCVFeatures):
    """SIFT keypoints and descriptors, matched by Lowe's ratio test (``ratio``)."""

    name = "sift"

    def __init__(self, ratio: float = 0.8, **options: Any) -> None:
        super().__init__(**options)
        self.ratio = ratio

    def _detector(self) -> Any:
        return cv2.SIFT_create(nfeatures=self.max_keypoints)

    def match(self, query: LocalFeatures, candidate: LocalFeatures) -> np.ndarray:
        return ratio_test_matches(query.descriptors, candidate.descriptors, self.ratio)


class ORBFeatures(_OpenCVFeatures):
    """ORB keypoints with binary descriptors, matched by cross-checked Hamming distance."""

    name = "orb"
    binary = True

    def _detector(self) -> Any:
        # A smaller edge threshold and patch keep keypoints near the borders of small images.
        return cv2.ORB_create(nfeatures=self.max_keypoints, edgeThreshold=15, patchSize=15)

    def match(self, query: LocalFeatures, candidate: LocalFeatures) -> np.ndarray:
        return cross_check_matches(query.descriptors, candidate.descriptors, binary=True)


def _scale(shape: tuple[int, ...], min_side: int, max_side: int) -> float:
    shorter, longer = min(shape[:2]), max(shape[:2])
    if shorter < min_side:
        return min(min_side / shorter, max_side / longer)
    if longer > max_side:
        return max_side / longer
    return 1.0


@register_method("sift")
def _sift(model: Any = None, **options: Any) -> SIFTFeatures:
    return SIFTFeatures(**options)


@register_method("orb")
def _orb(model: Any = None, **options: Any) -> ORBFeatures:
    return ORBFeatures(**options)
