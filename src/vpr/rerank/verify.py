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
__all__ = ["ESTIMATORS", "GEOMETRIES", "GeometricVerifier", "Verification"]
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
        return self.verify(query, candidate, matches, pairs=False).inliers

    def verify(self, query: LocalFeatures, candidate: LocalFeatures, matches: np.ndarray,
               pairs: bool = True) -> Verification:
        """Fits the geometry to ``matches`` (m, 2 index pairs) and returns its inliers.

        ``pairs``: also their correspondences, best-fitting first (False: the count only,
        as an evaluation needs, skipping the residuals).
        """
        matches = np.asarray(matches, np.int64).reshape(-1, 2)
        if len(matches) < _MINIMUM[self.geometry]:
            return Verification.none()
        source = np.ascontiguousarray(query.keypoints[matches[:, 0]], np.float32)
        target = np.ascontiguousarray(candidate.keypoints[matches[:, 1]], np.float32)
        threshold = max(self.threshold_px, query.cell_px, candidate.cell_px)
        # Reproducible counts: the estimators sample from OpenCV's global generator.
        cv2.setRNGSeed(0)
        try:
            if self.geometry == "homography":
                fitted, mask = cv2.findHomography(source, target, ESTIMATORS[self.estimator],
                                                  threshold, maxIters=self.max_iterations,
                                                  confidence=self.confidence)
            else:
                fitted, mask = cv2.findFundamentalMat(source, target,
                                                      ESTIMATORS[self.estimator], threshold,
                                                      self.confidence, self.max_iterations)
        except cv2.error:
            # Degenerate samples (all points on a line, repeated points) fit nothing.
            return Verification.none()
        if mask is None:
            return Verification.none()
        keep = mask.reshape(-1).astype(bool)
        if not pairs or fitted is None or fitted.size < 9:  # the count alone
            return Verification(int(keep.sum()), np.zeros((0, 4), np.float32))
        source, target = source[keep], target[keep]
        errors = _residuals(self.geometry, fitted[:3].astype(np.float64), source, target)
        # Best-fitting first, so that a capped list keeps the most precise correspondences.
        order = np.argsort(errors, kind="stable")
        return Verification(int(keep.sum()),
                            np.hstack([source[order], target[order]]).astype(np.float32))


@dataclass(frozen=True)
class Verification:
    """What the verifier found between a query and a candidate.

    Attributes:
        inliers: how many matches the fitted geometry explains.
        pairs: (inliers, 4) float32 ``x_query, y_query, x_candidate, y_candidate`` of those
            matches, in each original image's pixels, the best-fitting first.
    """

    inliers: int
    pairs: np.ndarray

    @classmethod
    def none(cls) -> Verification:
        """Nothing verified."""
        return cls(0, np.zeros((0, 4), np.float32))


def _residuals(geometry: str, fitted: np.ndarray, source: np.ndarray,
               target: np.ndarray) -> np.ndarray:
    """Each pair's distance from the fitted model, in pixels: the homography's transfer error
    in the candidate image, or the fundamental matrix's Sampson distance."""
    ones = np.ones((len(source), 1))
    points = np.hstack([source, ones]).T  # (3, n)
    others = np.hstack([target, ones]).T
    if geometry == "homography":
        projected = fitted @ points
        projected = projected[:2] / np.where(np.abs(projected[2]) < 1e-12, 1e-12, projected[2])
        return np.linalg.norm(projected.T - target, axis=1)
    lines, back = fitted @ points, fitted.T @ others
    algebraic = np.sum(others * lines, axis=0)
    scale = lines[0] ** 2 + lines[1] ** 2 + back[0] ** 2 + back[1] ** 2
    return np.abs(algebraic) / np.sqrt(np.maximum(scale, 1e-12))
