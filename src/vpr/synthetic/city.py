"""The layout of a generated city: a street grid, building boxes with facade attributes, props.

Coordinates are metres in a local frame: x east, y north. Streets run north-south (at
``streets.xs``) and east-west (at ``streets.ys``); buildings are axis-aligned boxes lining the
blocks between them. Facade *styles* come from one library shared by every city of a seed, so
the same colours and window grids repeat everywhere (perceptual aliasing); what tells places
apart is the arrangement: heights, widths, gaps, setbacks, doors, shop signs, trees.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vpr.synthetic.rng import rng_for

# Face ids of a box: 0 the x0 face (normal -x), 1 the x1 face (+x), 2 the y0 face (-y),
# 3 the y1 face (+y).
FACE_NORMALS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]], dtype=np.float32)

# Typical facade paints (linear RGB): few enough that colours alone cannot name a place.
WALL_PALETTE = np.array(
    [
        [0.62, 0.52, 0.40], [0.70, 0.64, 0.52], [0.45, 0.20, 0.14], [0.55, 0.28, 0.18],
        [0.50, 0.50, 0.50], [0.72, 0.72, 0.70], [0.66, 0.50, 0.22], [0.45, 0.53, 0.60],
        [0.70, 0.45, 0.38], [0.30, 0.24, 0.20], [0.60, 0.60, 0.55], [0.38, 0.40, 0.42],
    ],
    dtype=np.float32,
)
GLASS_PALETTE = np.array(
    [[0.10, 0.13, 0.17], [0.12, 0.16, 0.14], [0.16, 0.13, 0.10], [0.20, 0.24, 0.30]],
    dtype=np.float32,
)
SIGN_PALETTE = np.array(
    [
        [0.75, 0.10, 0.08], [0.10, 0.30, 0.65], [0.10, 0.45, 0.20], [0.85, 0.70, 0.10],
        [0.90, 0.90, 0.88], [0.08, 0.08, 0.08], [0.80, 0.35, 0.05], [0.50, 0.15, 0.50],
    ],
    dtype=np.float32,
)
STYLE_COUNT = 14
CAMERA_HEIGHT = 2.5
SIDEWALK_WIDTH = 3.0


@dataclass(frozen=True)
class FacadeStyles:
    """A library of facade styles; every field has one row per style."""

    wall: np.ndarray  # (S, 3) linear RGB
    trim: np.ndarray  # (S, 3) cornices, bands, window frames
    glass: np.ndarray  # (S, 3) window glass by day
    floor_height: np.ndarray  # (S,) metres
    ground_height: np.ndarray  # (S,) metres of the ground floor
    window_spacing: np.ndarray  # (S,) metres between window centres
    window_width: np.ndarray  # (S,) fraction of the spacing
    window_height: np.ndarray  # (S,) fraction of the floor
    bands: np.ndarray  # (S,) bool: a trim band at each floor
    shop_rate: np.ndarray  # (S,) probability of a shop front on the ground floor


@dataclass(frozen=True)
class Streets:
    """The street grid: centre lines and widths (facade to facade) in metres."""

    xs: np.ndarray  # x of the north-south streets, increasing
    x_widths: np.ndarray
    ys: np.ndarray  # y of the east-west streets, increasing
    y_widths: np.ndarray

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) of the street grid."""
        return float(self.xs[0]), float(self.xs[-1]), float(self.ys[0]), float(self.ys[-1])

    @property
    def interior(self) -> tuple[float, float, float, float]:
        """The grid without its outer ring of blocks: where cameras may stand."""
        return float(self.xs[1]), float(self.xs[-2]), float(self.ys[1]), float(self.ys[-2])


@dataclass(frozen=True)
class Buildings:
    """Building boxes and their facade attributes; one row per building."""

    box: np.ndarray  # (N, 4) x0, x1, y0, y1
    height: np.ndarray  # (N,)
    style: np.ndarray  # (N,) index into FacadeStyles
    tint: np.ndarray  # (N, 3) small per-building colour variation
    phase: np.ndarray  # (N,) window grid offset in metres
    front: np.ndarray  # (N,) face id that faces the street
    shop: np.ndarray  # (N,) bool
    door_u: np.ndarray  # (N,) door position along the front face, metres
    sign: np.ndarray  # (N,) bool: a shop sign above the ground floor
    sign_span: np.ndarray  # (N, 2) start/end of the sign along the front face, metres
    sign_colour: np.ndarray  # (N, 3)
    awning: np.ndarray  # (N,) bool
    awning_colour: np.ndarray  # (N, 3)
    side_windows: np.ndarray  # (N,) bool: windows on the non-front faces too
    # Slow change of the city between epochs (database = epoch 0, later queries = epoch 1).
    repaint: np.ndarray  # (N,) bool
    repaint_colour: np.ndarray  # (N, 3)
    new_sign: np.ndarray  # (N,) bool: the sign changes (or appears) at epoch 1
    new_sign_colour: np.ndarray  # (N, 3)

    def __len__(self) -> int:
        return len(self.height)


@dataclass(frozen=True)
class Props:
    """Static street furniture: trees and lamp posts (kind 0 tree, 1 lamp)."""

    kind: np.ndarray  # (M,)
    xy: np.ndarray  # (M, 2)
    size: np.ndarray  # (M,) scale factor
    variant: np.ndarray  # (M,) integer seed of the shape


@dataclass(frozen=True)
class City:
    """A generated city: streets, buildings and props in local metres."""

    name: str
    seed: int
    styles: FacadeStyles
    streets: Streets
    buildings: Buildings
    props: Props


@lru_cache(maxsize=4)
def facade_styles(seed: int) -> FacadeStyles:
    """The style library of a seed (shared by all its cities)."""
    rng = rng_for(seed, "styles")
    count = STYLE_COUNT
    wall = WALL_PALETTE[rng.integers(0, len(WALL_PALETTE), count)]
    wall = np.clip(wall * rng.uniform(0.92, 1.08, (count, 1)), 0, 1).astype(np.float32)
    light_trim = rng.random(count) < 0.5
    trim = np.where(light_trim[:, None], np.minimum(wall * 1.35 + 0.1, 0.95), wall * 0.6)
    ribbon = rng.random(count) < 0.15  # modern strip windows
    return FacadeStyles(
        wall=wall,
        trim=trim.astype(np.float32),
        glass=GLASS_PALETTE[rng.integers(0, len(GLASS_PALETTE), count)],
        floor_height=rng.uniform(2.9, 3.8, count).astype(np.float32),
        ground_height=rng.uniform(3.6, 5.0, count).astype(np.float32),
        window_spacing=rng.uniform(2.2, 4.2, count).astype(np.float32),
        window_width=np.where(ribbon, 0.96, rng.uniform(0.35, 0.7, count)).astype(np.float32),
        window_height=rng.uniform(0.4, 0.62, count).astype(np.float32),
        bands=rng.random(count) < 0.4,
        shop_rate=rng.uniform(0.15, 0.85, count).astype(np.float32),
    )


def _street_grid(rng: np.random.Generator, blocks: tuple[int, int]) -> Streets:
    def lines(count: int) -> tuple[np.ndarray, np.ndarray]:
        widths = rng.choice([14.0, 16.0, 18.0, 20.0, 24.0], size=count + 1)
        spacing = rng.uniform(70.0, 120.0, size=count)
        positions = np.concatenate([[0.0], np.cumsum(spacing)])
        return positions, widths

    xs, x_widths = lines(blocks[0])
    ys, y_widths = lines(blocks[1])
    return Streets(xs=xs, x_widths=x_widths, ys=ys, y_widths=y_widths)


def _frontage(
    rng: np.random.Generator, start: float, end: float
) -> list[tuple[float, float, float]]:
    """Splits a block side into (u0, u1, setback) building slots with occasional gaps."""
    slots = []
    position = start + rng.uniform(0.0, 2.0)
    while position < end - 4.0:
        if rng.random() < 0.16:  # an alley or an empty lot
            position += rng.uniform(2.0, 9.0)
            continue
        width = min(rng.uniform(6.0, 24.0), end - position)
        setback = 0.0 if rng.random() < 0.75 else rng.uniform(0.5, 4.0)
        slots.append((position, position + width, setback))
        position += width
    return slots


def _buildings(
    rng: np.random.Generator, streets: Streets, styles: FacadeStyles, style_subset: np.ndarray,
    park_rate: float,
) -> tuple[Buildings, list[tuple[float, float, float, float]]]:
    rows: list[tuple[float, float, float, float, int]] = []  # x0, x1, y0, y1, front
    parks = []
    for i in range(len(streets.xs) - 1):
        for j in range(len(streets.ys) - 1):
            bx0 = streets.xs[i] + streets.x_widths[i] / 2
            bx1 = streets.xs[i + 1] - streets.x_widths[i + 1] / 2
            by0 = streets.ys[j] + streets.y_widths[j] / 2
            by1 = streets.ys[j + 1] - streets.y_widths[j + 1] / 2
            if rng.random() < park_rate:
                parks.append((bx0, bx1, by0, by1))
                continue
            depth_limit = min(bx1 - bx0, by1 - by0) / 2 - 1.0
            corner = min(14.0, depth_limit)
            for u0, u1, setback in _frontage(rng, bx0, bx1):  # south side, faces -y
                depth = min(rng.uniform(9.0, 18.0), depth_limit)
                rows.append((u0, u1, by0 + setback, by0 + setback + depth, 2))
            for u0, u1, setback in _frontage(rng, bx0, bx1):  # north side, faces +y
                depth = min(rng.uniform(9.0, 18.0), depth_limit)
                rows.append((u0, u1, by1 - setback - depth, by1 - setback, 3))
            for u0, u1, setback in _frontage(rng, by0 + corner, by1 - corner):  # west, -x
                depth = min(rng.uniform(9.0, 18.0), depth_limit)
                rows.append((bx0 + setback, bx0 + setback + depth, u0, u1, 0))
            for u0, u1, setback in _frontage(rng, by0 + corner, by1 - corner):  # east, +x
                depth = min(rng.uniform(9.0, 18.0), depth_limit)
                rows.append((bx1 - setback - depth, bx1 - setback, u0, u1, 1))
    table = np.array(rows, dtype=np.float32)
    count = len(table)
    box = table[:, :4]
    front = table[:, 4].astype(np.int64)
    style = style_subset[rng.integers(0, len(style_subset), count)]
    floors = rng.integers(2, 10, count)
    height = (
        styles.ground_height[style] + floors * styles.floor_height[style]
        + rng.uniform(0.4, 1.2, count)
    )
    along = np.where(front < 2, box[:, 3] - box[:, 2], box[:, 1] - box[:, 0])
    shop = rng.random(count) < styles.shop_rate[style]
    sign = shop & (rng.random(count) < 0.8)
    sign_start = rng.uniform(0.05, 0.45, count) * along
    sign_end = sign_start + rng.uniform(0.25, 0.55, count) * along
    sign_span = np.stack([sign_start, np.minimum(sign_end, along - 0.3)], axis=1)
    return Buildings(
        box=box,
        height=height.astype(np.float32),
        style=style,
        tint=rng.uniform(0.93, 1.07, (count, 3)).astype(np.float32),
        phase=rng.uniform(0.0, 4.0, count).astype(np.float32),
        front=front,
        shop=shop,
        door_u=(rng.uniform(0.1, 0.9, count) * along).astype(np.float32),
        sign=sign,
        sign_span=sign_span.astype(np.float32),
        sign_colour=SIGN_PALETTE[rng.integers(0, len(SIGN_PALETTE), count)],
        awning=shop & (rng.random(count) < 0.35),
        awning_colour=SIGN_PALETTE[rng.integers(0, len(SIGN_PALETTE), count)],
        side_windows=rng.random(count) < 0.3,
        repaint=rng.random(count) < 0.12,
        repaint_colour=WALL_PALETTE[rng.integers(0, len(WALL_PALETTE), count)],
        new_sign=rng.random(count) < 0.15,
        new_sign_colour=SIGN_PALETTE[rng.integers(0, len(SIGN_PALETTE), count)],
    ), parks


def _props(
    rng: np.random.Generator, streets: Streets,
    parks: list[tuple[float, float, float, float]],
) -> Props:
    kinds, points, sizes = [], [], []

    def street_side_items(centre: float, width: float, start: float, end: float,
                          vertical: bool) -> None:
        offset = width / 2 - SIDEWALK_WIDTH / 2 - 0.3
        tree_lined = rng.random() < 0.55
        lamp = start + rng.uniform(0, 25)
        side = 1.0
        while lamp < end:
            across = centre + side * (width / 2 - 0.6)
            kinds.append(1)
            points.append((across, lamp) if vertical else (lamp, across))
            sizes.append(rng.uniform(0.9, 1.1))
            lamp += rng.uniform(24.0, 32.0)
            side = -side
        if not tree_lined:
            return
        for sign in (-1.0, 1.0):
            along = start + rng.uniform(2, 10)
            while along < end:
                if rng.random() < 0.8:
                    across = centre + sign * offset
                    kinds.append(0)
                    points.append((across, along) if vertical else (along, across))
                    sizes.append(rng.uniform(0.7, 1.3))
                along += rng.uniform(7.0, 14.0)

    x_min, x_max, y_min, y_max = streets.extent
    for x, width in zip(streets.xs, streets.x_widths):
        street_side_items(x, width, y_min, y_max, vertical=True)
    for y, width in zip(streets.ys, streets.y_widths):
        street_side_items(y, width, x_min, x_max, vertical=False)
    for bx0, bx1, by0, by1 in parks:
        count = int((bx1 - bx0) * (by1 - by0) / 90.0)
        for _ in range(count):
            kinds.append(0)
            points.append((rng.uniform(bx0 + 2, bx1 - 2), rng.uniform(by0 + 2, by1 - 2)))
            sizes.append(rng.uniform(0.9, 1.6))
    count = len(kinds)
    return Props(
        kind=np.array(kinds, dtype=np.int64),
        xy=np.array(points, dtype=np.float32).reshape(count, 2),
        size=np.array(sizes, dtype=np.float32),
        variant=rng.integers(0, 2**31 - 1, count),
    )


@lru_cache(maxsize=8)
def build_city(name: str, seed: int, blocks: tuple[int, int]) -> City:
    """Generates the city ``name`` of a seed with ``blocks`` (east, north) blocks of streets.

    A ring of extra blocks surrounds them, so that a camera on any street of the interior
    (``streets.interior``) sees buildings on both sides. The same arguments always give the
    same city (it is cached per process).
    """
    rng = rng_for(seed, "city", name, *blocks)
    styles = facade_styles(seed)
    # Each city uses about half of the library, so styles repeat within and across cities.
    style_subset = np.sort(rng.choice(STYLE_COUNT, size=STYLE_COUNT // 2 + 1, replace=False))
    streets = _street_grid(rng, (blocks[0] + 2, blocks[1] + 2))
    buildings, parks = _buildings(rng, streets, styles, style_subset, park_rate=0.06)
    props = _props(rng, streets, parks)
    return City(name=name, seed=seed, styles=styles, streets=streets, buildings=buildings,
                props=props)


@dataclass(frozen=True)
class StreetSegment:
    """A straight piece of street centre line between two intersections."""

    start: tuple[float, float]
    end: tuple[float, float]
    width: float

    @property
    def length(self) -> float:
        return float(np.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1]))

    @property
    def direction_deg(self) -> float:
        """Compass heading (0 north, 90 east) from start to end."""
        dx = self.end[0] - self.start[0]
        dy = self.end[1] - self.start[1]
        return float(np.degrees(np.arctan2(dx, dy)) % 360.0)


def street_segments(
    streets: Streets, window: tuple[float, float, float, float] | None = None
) -> list[StreetSegment]:
    """The centre-line segments between intersections that lie inside ``window``.

    Args:
        streets: the street grid.
        window: (x_min, x_max, y_min, y_max); a segment is kept when both its ends are
            inside. Default: ``streets.interior``.
    """
    segments = []
    for x, width in zip(streets.xs, streets.x_widths):
        for y0, y1 in zip(streets.ys[:-1], streets.ys[1:]):
            segments.append(StreetSegment((float(x), float(y0)), (float(x), float(y1)),
                                          float(width)))
    for y, width in zip(streets.ys, streets.y_widths):
        for x0, x1 in zip(streets.xs[:-1], streets.xs[1:]):
            segments.append(StreetSegment((float(x0), float(y)), (float(x1), float(y)),
                                          float(width)))
    x_min, x_max, y_min, y_max = streets.interior if window is None else window

    def inside(point: tuple[float, float]) -> bool:
        return x_min - 0.01 <= point[0] <= x_max + 0.01 and y_min - 0.01 <= point[1] <= y_max + 0.01

    return [segment for segment in segments if inside(segment.start) and inside(segment.end)]
