"""Re-ranking's evidence as the page draws it: inlier correspondences as image fractions.

The page (`vpr serve`) draws a match's ``keypoint_pairs`` as lines between the photo and the
matched image, each shown at whatever size fits its box. So a pair is given as fractions of
each image's width and height (``[x_photo, y_photo, x_match, y_match]``, in [0, 1]) rather
than pixels: a photo the service shrank before locating it, or shown at another size, still
lines up. The re-ranker's keypoints are in each original file's pixels (`vpr.rerank`), so
the divisors are the files' own sizes, read from their headers, as displayed: the
re-ranker reads every file upright (its EXIF orientation applied) and so do browsers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# The most correspondences kept per match (the best-fitting ones): enough to see the
# agreement, few enough to keep an answer small (50 pairs are about 2 kB of JSON).
MAX_KEYPOINT_PAIRS = 50
DECIMALS = 4  # 1e-4 of a 4000-pixel side is 0.4 pixel


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) of an image file as displayed (EXIF orientation applied), from its
    header; None when it cannot be read."""
    from PIL import Image

    from vpr.data.images import oriented_size

    try:
        with Image.open(path) as image:
            return oriented_size(image)
    except (OSError, ValueError):
        return None


def keypoint_pairs(pixels: np.ndarray | None, photo_size: tuple[int, int] | None,
                   match_size: tuple[int, int] | None,
                   limit: int = MAX_KEYPOINT_PAIRS) -> list[list[float]] | None:
    """Pixel correspondences as the page's ``keypoint_pairs``.

    Args:
        pixels: (n, 4) ``x_photo, y_photo, x_match, y_match`` in each image's pixels, the
            best first; None when the match was not verified.
        photo_size, match_size: (width, height) of each image (None: unknown).
        limit: the most pairs kept (the first ones).

    Returns:
        At most ``limit`` rows of four fractions; None when not verified or a size is
        unknown (nothing that could be drawn in the right place).
    """
    if pixels is None or photo_size is None or match_size is None:
        return None
    divisors = np.array([*photo_size, *match_size], np.float64)
    fractions = np.clip(np.asarray(pixels, np.float64)[:limit] / divisors, 0.0, 1.0)
    return np.round(fractions, DECIMALS).tolist()
