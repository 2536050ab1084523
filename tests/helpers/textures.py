"""Images with corners everywhere, for local features (re-ranking, keypoint pairs)."""

from __future__ import annotations

import cv2
import numpy as np

SIZE = (160, 120)  # width, height


def texture(seed: int) -> np.ndarray:
    """A (120, 160, 3) image of random coloured rectangles and discs: corners everywhere."""
    rng = np.random.default_rng(seed)
    image = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    for _ in range(60):
        x, y = (int(v) for v in rng.integers(0, SIZE, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            w, h = (int(v) for v in rng.integers(5, 30, 2))
            cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
        else:
            cv2.circle(image, (x, y), int(rng.integers(3, 15)), colour, -1)
    return image
