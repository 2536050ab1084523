"""Geometric verification: how many putative matches one camera motion explains (OpenCV)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vpr.rerank.features import LocalFeatures
from vpr.rerank.names import ESTIMATOR_NAMES, GEOMETRIES

# Robust estimators by name; USAC-MAGSAC++ is OpenCV's most accurate general-purpose one.
ESTIMATORS = {"magsac": cv2.USAC_MAGSAC, "usac": cv2.USAC_DEFAULT, "ransac": cv2.RANSAC}
assert tuple(ESTIMATORS) == ESTIMATOR_NAMES
__all__ = ["ESTIMATORS", "GEOMETRIES", "GeometricVerifier"]
# The fewest matches each geometry can be fitted to.
_MINIMUM = {"homography": 4, "fundamental": 8}


@dataclass(frozen=True)
class GeometricVerifier:
    """Fits a homography or a fundamental matrix robustly and counts its inliers.

    A homography suits street views (facades are near-planar) and is better constrained on
    few matches; a fundamental matrix allows any static 3-D scene but accepts more chance
    matches (a point need only lie near a line).

    Attributes:
        geometry: ``homography`` or ``fundamental``.
        estimator: ``magsac`` (USAC-MAGSAC++), ``usac`` or ``ransac``.
        threshold_px: reprojection (or epipolar) tolerance in pixels; raised to the features'
            ``cell_px`` for dense grids, whose keypoints are only as precise as a cell.
        confidence, max_iterations: the robust estimator's stopping rule.
    """

    geometry: str = "homography"
    estimator: str = "magsac"
    threshold_px: float = 3.0
    confidence: float = 0.999
    max_iterations: int = 2000

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"unknown geometry {self.geometry!r}; valid: {', '.join(GEOMETRIES)}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; "
                             f"valid: {', '.join(ESTIMATORS)}")

    def inliers(self, query: LocalFeatures, candidate: LocalFeatures,
                matches: np.ndarray) -> int:
        """The number of ``matches`` (m, 2 index pairs) consistent with the fitted geometry."""
        matches = np.asarray(matches, np.int64).reshape(-1, 2)
        if len(matches) < _MINIMUM[self.geometry]:
            return 0
        source = np.ascontiguousarray(query.keypoints[matches[:, 0]], np.float32)
        target = np.ascontiguousarray(candidate.keypoints[matches[:, 1]], np.float32)
        threshold = max(self.threshold_px, query.cell_px, candidate.cell_px)
        # Reproducible counts: the estimators sample from OpenCV's global generator.
        cv2.setRNGSeed(0)
        try:
            if self.geometry == "homography":
                _, mask = cv2.findHomography(source, target, ESTIMATORS[self.estimator],
                                             threshold, maxIters=self.max_iterations,
                                             confidence=self.confidence)
            else:
                _, mask = cv2.findFundamentalMat(source, target, ESTIMATORS[self.estimator],
                                                 threshold, self.confidence,
                                                 self.max_iterations)
        except cv2.error:
            # Degenerate samples (all points on a line, repeated points) fit nothing.
            return 0
        return 0 if mask is None else int(mask.sum())
