"""Putative matches between two sets of descriptors: mutual nearest neighbours, ratio test."""

from __future__ import annotations

import cv2
import numpy as np


def mutual_nearest_neighbours(query: np.ndarray, candidate: np.ndarray,
                              min_similarity: float = -1.0) -> np.ndarray:
    """Pairs (i, j) where j is i's most similar candidate descriptor and i is j's.

    Args:
        query: (n, d) L2-normalised descriptors.
        candidate: (m, d) L2-normalised descriptors.
        min_similarity: pairs less similar (cosine) than this are dropped.

    Returns:
        (k, 2) int64 index pairs (query, candidate).
    """
    if len(query) == 0 or len(candidate) == 0:
        return np.zeros((0, 2), np.int64)
    similarity = np.asarray(query, np.float32) @ np.asarray(candidate, np.float32).T
    forward = similarity.argmax(axis=1)
    backward = similarity.argmax(axis=0)
    rows = np.flatnonzero(backward[forward] == np.arange(len(query)))
    rows = rows[similarity[rows, forward[rows]] >= min_similarity]
    return np.column_stack([rows, forward[rows]]).astype(np.int64)


def ratio_test_matches(query: np.ndarray, candidate: np.ndarray, ratio: float = 0.8,
                       binary: bool = False) -> np.ndarray:
    """Lowe's ratio test: keep i -> j when j is clearly closer than the second-closest.

    Args:
        query: (n, d) float descriptors, or (n, bytes) uint8 packed binary descriptors.
        candidate: (m, d) descriptors of the same kind.
        ratio: keep when distance(nearest) < ratio * distance(second nearest).
        binary: Hamming distance on packed bits instead of L2.

    Returns:
        (k, 2) int64 index pairs (query, candidate); with one candidate descriptor, none.
    """
    if len(query) == 0 or len(candidate) < 2:
        return np.zeros((0, 2), np.int64)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING if binary else cv2.NORM_L2)
    pairs = [(best.queryIdx, best.trainIdx)
             for best, second in (m for m in matcher.knnMatch(_kind(query, binary),
                                                               _kind(candidate, binary), k=2)
                                  if len(m) == 2)
             if best.distance < ratio * second.distance]
    return np.array(pairs, np.int64).reshape(-1, 2)


def cross_check_matches(query: np.ndarray, candidate: np.ndarray,
                        binary: bool = False) -> np.ndarray:
    """Mutual nearest neighbours by distance (L2, or Hamming for packed binary descriptors)."""
    if len(query) == 0 or len(candidate) == 0:
        return np.zeros((0, 2), np.int64)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING if binary else cv2.NORM_L2, crossCheck=True)
    pairs = [(match.queryIdx, match.trainIdx)
             for match in matcher.match(_kind(query, binary), _kind(candidate, binary))]
    return np.array(pairs, np.int64).reshape(-1, 2)


def _kind(descriptors: np.ndarray, binary: bool) -> np.ndarray:
    # OpenCV's matcher wants uint8 rows for Hamming and float32 rows for L2.
    return np.ascontiguousarray(descriptors, np.uint8 if binary else np.float32)
