"""A pinhole camera standing on the street, and the rays of its pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpr.synthetic.city import CAMERA_HEIGHT


@dataclass(frozen=True)
class Camera:
    """Position (local metres), compass heading (0 north, 90 east), horizontal field of view."""

    x: float
    y: float
    heading: float
    fov: float = 70.0
    pitch: float = 0.0  # degrees, positive looks up
    height: float = CAMERA_HEIGHT

    @property
    def forward(self) -> np.ndarray:
        h = np.radians(self.heading)
        return np.array([np.sin(h), np.cos(h)], dtype=np.float64)

    @property
    def right(self) -> np.ndarray:
        h = np.radians(self.heading)
        return np.array([np.cos(h), -np.sin(h)], dtype=np.float64)


@dataclass(frozen=True)
class Rays:
    """Pixel rays of a W x H image: per column a horizontal direction, per row a slope.

    The direction of column ``c`` is ``forward + lateral[c] * right`` (forward component 1),
    so a hit at parameter ``t`` lies ``t`` metres ahead of the camera (the depth) and at
    height ``camera.height + t * slope[r]`` on row ``r``.
    """

    directions: np.ndarray  # (W, 2)
    lateral: np.ndarray  # (W,)
    slope: np.ndarray  # (H,)
    focal: float  # pixels
    centre_row: float  # row of the horizon (may lie outside the image)


def camera_rays(camera: Camera, width: int, height: int) -> Rays:
    """The rays of every column and row of a ``width`` x ``height`` image."""
    focal = (width / 2) / np.tan(np.radians(camera.fov) / 2)
    lateral = ((np.arange(width) + 0.5) - width / 2) / focal
    centre_row = height / 2 + focal * np.tan(np.radians(camera.pitch))
    slope = (centre_row - (np.arange(height) + 0.5)) / focal
    directions = camera.forward[None, :] + lateral[:, None] * camera.right[None, :]
    return Rays(directions=directions, lateral=lateral, slope=slope, focal=float(focal),
                centre_row=float(centre_row))
