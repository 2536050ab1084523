"""Occluders drawn as upright billboards: trees, lamp posts, vehicles and pedestrians.

Trees and lamps are part of the city (static); vehicles and pedestrians are drawn anew for each
image from its ``salt``, so the same place is occluded differently every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpr.synthetic.appearance import Appearance, Lighting
from vpr.synthetic.camera import Camera, Rays
from vpr.synthetic.city import SIDEWALK_WIDTH, City
from vpr.synthetic.rng import rng_for, value_noise

TREE, LAMP, CAR, PERSON = 0, 1, 2, 3
CAR_PAINTS = np.array(
    [[0.85, 0.85, 0.85], [0.05, 0.05, 0.06], [0.45, 0.47, 0.50], [0.55, 0.06, 0.05],
     [0.08, 0.18, 0.45], [0.25, 0.27, 0.28], [0.70, 0.65, 0.50]],
    dtype=np.float32,
)
CLOTHES = np.array(
    [[0.08, 0.08, 0.10], [0.15, 0.20, 0.35], [0.55, 0.10, 0.10], [0.60, 0.55, 0.45],
     [0.20, 0.35, 0.20], [0.80, 0.80, 0.78]],
    dtype=np.float32,
)


@dataclass(frozen=True)
class Billboard:
    """One upright object: ground position, size in metres, kind and a shape seed."""

    kind: int
    x: float
    y: float
    width: float
    height: float
    variant: int


def static_billboards(city: City, camera: Camera, radius: float) -> list[Billboard]:
    """The city's trees and lamp posts within ``radius`` metres of the camera."""
    props = city.props
    if len(props.kind) == 0:
        return []
    distance = np.hypot(props.xy[:, 0] - camera.x, props.xy[:, 1] - camera.y)
    items = []
    for index in np.flatnonzero(distance < radius):
        kind = int(props.kind[index])
        size = float(props.size[index])
        width, height = (4.0 * size, 7.0 * size) if kind == TREE else (1.6, 6.5 * size)
        items.append(Billboard(kind, float(props.xy[index, 0]), float(props.xy[index, 1]),
                               width, height, int(props.variant[index])))
    return items


def transient_billboards(city: City, camera: Camera, appearance: Appearance) -> list[Billboard]:
    """Vehicles and pedestrians around the camera's street, drawn from the image's salt."""
    rng = rng_for(appearance.salt, "traffic")
    streets = city.streets
    ix = int(np.argmin(np.abs(streets.xs - camera.x)))
    iy = int(np.argmin(np.abs(streets.ys - camera.y)))
    vertical = abs(streets.xs[ix] - camera.x) <= abs(streets.ys[iy] - camera.y)
    centre = streets.xs[ix] if vertical else streets.ys[iy]
    half = (streets.x_widths[ix] if vertical else streets.y_widths[iy]) / 2
    along0 = camera.y if vertical else camera.x
    items = []

    def place(across: float, along: float) -> tuple[float, float]:
        return (centre + across, along) if vertical else (along, centre + across)

    for _ in range(rng.poisson(5.0 * appearance.occluders)):
        parked = rng.random() < 0.5
        lane = half - SIDEWALK_WIDTH - 1.1 if parked else rng.uniform(1.2, 2.5)
        across = lane * rng.choice([-1.0, 1.0])
        x, y = place(across, along0 + rng.uniform(-45.0, 45.0))
        # A car seen from the side is long, from behind short: use the view angle.
        cos_view = abs(np.dot(camera.forward, [0.0, 1.0] if vertical else [1.0, 0.0]))
        length = 1.8 + 2.5 * np.sqrt(max(0.0, 1.0 - cos_view**2))
        big = rng.random() < 0.15  # vans and buses
        items.append(Billboard(CAR, x, y, length * (1.6 if big else 1.0),
                               2.6 if big else 1.5, int(rng.integers(2**31 - 1))))
    for _ in range(rng.poisson(4.0 * appearance.occluders)):
        across = (half - rng.uniform(0.5, SIDEWALK_WIDTH)) * rng.choice([-1.0, 1.0])
        x, y = place(across, along0 + rng.uniform(-35.0, 35.0))
        items.append(Billboard(PERSON, x, y, 0.6, float(rng.uniform(1.5, 1.9)),
                               int(rng.integers(2**31 - 1))))
    return items


def _shape(
    item: Billboard, s: np.ndarray, v: np.ndarray, lighting: Lighting
) -> tuple[np.ndarray, np.ndarray]:
    """Mask and linear colour (lit, with emission) of a billboard on local coordinates.

    ``s`` runs from -1 (left edge) to 1 (right edge); ``v`` from 0 (ground) to 1 (top).
    """
    rng = np.random.default_rng(item.variant)
    light = lighting.ambient + lighting.sun_colour * 0.5
    colour = np.zeros(s.shape + (3,), dtype=np.float32)
    if item.kind == TREE:
        trunk = (np.abs(s) < 0.05 + 0.03 * (1 - v)) & (v < 0.55)
        colour[:] = np.array([0.22, 0.16, 0.11]) * light
        spread = rng.uniform(0.7, 1.0)
        middle = rng.uniform(0.58, 0.68)
        ellipse = (s / spread) ** 2 + ((v - middle) / (0.98 - middle)) ** 2
        edge = value_noise(s * 3.0 + item.variant % 97, v * 3.0, item.variant)
        leaves = value_noise(s * 7.0, v * 7.0, item.variant + 1)
        if lighting.foliage_density > 0:
            crown = ellipse < 0.7 + 0.3 * edge
            crown &= leaves > 1.0 - lighting.foliage_density - 0.1  # sparse in autumn/spring
            shade = (0.55 + 0.6 * leaves) * (1.1 - 0.35 * np.clip(middle - v + 0.2, 0, 1))
            leaf = lighting.foliage * shade[..., None] * light
            colour = np.where(crown[..., None], leaf, colour)
        else:  # bare winter branches: a few thin limbs fanning out from the trunk
            crown = np.zeros(s.shape, dtype=bool)
            fork = middle - 0.2
            for slope in rng.uniform(-1.6, 1.6, 6):
                limb = np.abs(s - slope * (v - fork)) < 0.045
                crown |= limb & (v > fork) & (ellipse < 1.0)
        return trunk | crown, colour
    if item.kind == LAMP:
        pole = (np.abs(s) < 0.09) & (v < 0.97)
        head = (v > 0.93) & (v < 0.98) & (s > -0.05) & (s < 0.75)
        colour[:] = np.array([0.12, 0.13, 0.13]) * light
        if lighting.lamp_strength > 0:
            lamp = head & (v < 0.95)
            colour[lamp] = np.array([2.5, 2.0, 1.3]) * lighting.lamp_strength
        return pole | head, colour
    if item.kind == CAR:
        paint = CAR_PAINTS[rng.integers(len(CAR_PAINTS))]
        body = (np.abs(s) < 0.98) & (v > 0.12) & (v < 0.6) & ~(
            (np.abs(s) > 0.9) & (v > 0.52))
        cabin = (v >= 0.55) & (v < 0.97) & (np.abs(s) < 0.62 - (v - 0.55) * 0.5)
        wheel = (v < 0.3) & (np.abs(np.abs(s) - 0.6) < 0.16)
        colour[:] = paint * light
        glass = cabin & (v > 0.6) & (np.abs(s) < 0.56 - (v - 0.55) * 0.5)
        colour[glass] = np.array([0.05, 0.07, 0.09]) * light + lighting.sky_horizon * 0.15
        colour[wheel] = 0.02
        if lighting.lamp_strength > 0.5:
            lights = (np.abs(s) > 0.82) & (v > 0.35) & (v < 0.48) & body
            tail = rng.random() < 0.5
            colour[lights] = [2.0, 0.1, 0.05] if tail else [2.5, 2.4, 2.0]
        return body | cabin | wheel, colour
    # A pedestrian.
    cloth = CLOTHES[rng.integers(len(CLOTHES))]
    head = (s / 0.3) ** 2 + ((v - 0.92) / 0.075) ** 2 < 1.0
    torso = (v > 0.46) & (v < 0.85) & (np.abs(s) < 0.6 - 0.2 * (0.85 - v))
    legs = (v < 0.48) & (np.abs(np.abs(s) - 0.2) < 0.15)
    colour[:] = cloth * light
    colour[head] = np.array([0.55, 0.40, 0.30]) * light
    colour[legs] = CLOTHES[rng.integers(len(CLOTHES))] * light * 0.7
    return head | torso | legs, colour


def draw_billboards(
    image: np.ndarray, depth: np.ndarray, items: list[Billboard], camera: Camera, rays: Rays,
    lighting: Lighting,
) -> None:
    """Draws the items into ``image`` (H, W, 3) far to near, testing and updating ``depth``."""
    height, width = depth.shape
    forward, right = camera.forward, camera.right
    placed = []
    for item in items:
        relative = np.array([item.x - camera.x, item.y - camera.y])
        ahead = float(relative @ forward)
        if ahead < 2.0:  # nothing stands inside or right against the lens
            continue
        placed.append((ahead, float(relative @ right), item))
    placed.sort(key=lambda entry: -entry[0])
    for ahead, side, item in placed:
        scale = rays.focal / ahead
        centre = width / 2 + side * scale
        half = item.width / 2 * scale
        bottom = rays.centre_row + camera.height * scale
        top = rays.centre_row - (item.height - camera.height) * scale
        c0, c1 = max(int(np.floor(centre - half)), 0), min(int(np.ceil(centre + half)), width)
        r0, r1 = max(int(np.floor(top)), 0), min(int(np.ceil(bottom)), height)
        if c0 >= c1 or r0 >= r1 or half < 0.5:
            continue
        region = depth[r0:r1, c0:c1]
        if ahead >= region.max():  # hidden behind buildings: skip the shape
            continue
        s = ((np.arange(c0, c1) + 0.5 - centre) / half)[None, :]
        v = ((bottom - (np.arange(r0, r1) + 0.5)) / (bottom - top))[:, None]
        s, v = np.broadcast_arrays(s, v)
        mask, colour = _shape(item, s, v, lighting)
        mask &= ahead < region
        image[r0:r1, c0:c1][mask] = colour[mask]
        region[mask] = ahead
