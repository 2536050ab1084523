"""The renderer: a 2.5D ray cast of building boxes, plus sky, ground, props and fog.

Each image column casts one horizontal ray through the building boxes near the camera
(vectorised slab test); the nearest few hits per column are kept so that a taller building
can show above a lower one in front. Each row then reads the height ``camera.height +
depth * slope`` off those hits. Everything is linear RGB floats until :mod:`.postprocess`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpr.synthetic.appearance import Appearance, Lighting, lighting_for
from vpr.synthetic.camera import Camera, Rays, camera_rays
from vpr.synthetic.city import SIDEWALK_WIDTH, City
from vpr.synthetic.facades import WARM_LIGHT, FacadeHits, shade_facades
from vpr.synthetic.props import draw_billboards, static_billboards, transient_billboards
from vpr.synthetic.rng import hash_unit, value_noise

VIEW_RANGE = 250.0  # metres; farther buildings are lost in the haze anyway
LAYERS = 3  # building hits kept per column
LAMP_HEIGHT = 6.0


@dataclass(frozen=True)
class ColumnHits:
    """The nearest building hits of every column, sorted near to far; (W, LAYERS) each."""

    depth: np.ndarray  # inf where there is no hit
    building: np.ndarray
    face: np.ndarray
    u: np.ndarray


def cast_columns(city: City, camera: Camera, rays: Rays) -> ColumnHits:
    """Intersects each column's ray with the building boxes near the camera."""
    boxes = city.buildings.box
    # Distance from the camera to each box, and whether any corner lies ahead.
    gap_x = np.maximum(np.maximum(boxes[:, 0] - camera.x, camera.x - boxes[:, 1]), 0.0)
    gap_y = np.maximum(np.maximum(boxes[:, 2] - camera.y, camera.y - boxes[:, 3]), 0.0)
    near = np.hypot(gap_x, gap_y) < VIEW_RANGE
    corners_x = boxes[:, [0, 0, 1, 1]] - camera.x
    corners_y = boxes[:, [2, 3, 2, 3]] - camera.y
    ahead = (corners_x * camera.forward[0] + corners_y * camera.forward[1]).max(axis=1) > 0
    index = np.flatnonzero(near & ahead)
    width = len(rays.lateral)
    if len(index) == 0:
        empty = np.full((width, 1), np.inf)
        zeros = np.zeros((width, 1), dtype=np.int64)
        return ColumnHits(empty, zeros, zeros, np.zeros((width, 1)))
    box = boxes[index].astype(np.float64)
    dx = rays.directions[:, 0:1]
    dy = rays.directions[:, 1:2]
    dx = np.where(np.abs(dx) < 1e-9, 1e-9, dx)
    dy = np.where(np.abs(dy) < 1e-9, 1e-9, dy)
    tx0 = (box[None, :, 0] - camera.x) / dx
    tx1 = (box[None, :, 1] - camera.x) / dx
    ty0 = (box[None, :, 2] - camera.y) / dy
    ty1 = (box[None, :, 3] - camera.y) / dy
    t_enter_x = np.minimum(tx0, tx1)
    t_enter_y = np.minimum(ty0, ty1)
    t_near = np.maximum(t_enter_x, t_enter_y)
    t_far = np.minimum(np.maximum(tx0, tx1), np.maximum(ty0, ty1))
    t_near = np.where((t_far >= t_near) & (t_near > 0), t_near, np.inf)
    layers = min(LAYERS, len(index))
    order = np.argpartition(t_near, layers - 1, axis=1)[:, :layers]
    depth = np.take_along_axis(t_near, order, axis=1)
    resort = np.argsort(depth, axis=1)
    order = np.take_along_axis(order, resort, axis=1)
    depth = np.take_along_axis(depth, resort, axis=1)
    x_face = np.take_along_axis(t_enter_x >= t_enter_y, order, axis=1)
    face = np.where(x_face, np.where(dx > 0, 0, 1), np.where(dy > 0, 2, 3))
    hit_x = camera.x + depth * dx
    hit_y = camera.y + depth * dy
    chosen = box[order]  # (W, layers, 4)
    u = np.where(x_face, hit_y - chosen[..., 2], hit_x - chosen[..., 0])
    u = np.where(np.isfinite(depth), u, 0.0)
    return ColumnHits(depth=depth, building=index[order], face=face, u=u)


def lamp_light(
    city: City, camera: Camera, lighting: Lighting, x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> np.ndarray:
    """Warm light of the street lamps near the camera at points (x, y, z); (n, 3)."""
    if lighting.lamp_strength <= 0 or len(x) == 0:
        return np.zeros((len(x), 3), dtype=np.float32)
    props = city.props
    lamps = props.xy[props.kind == 1]
    distance = np.hypot(lamps[:, 0] - camera.x, lamps[:, 1] - camera.y)
    lamps = lamps[distance < 90.0]
    total = np.zeros(len(x), dtype=np.float32)
    for lamp_x, lamp_y in lamps:
        d2 = (x - lamp_x) ** 2 + (y - lamp_y) ** 2 + (z - LAMP_HEIGHT) ** 2
        total += np.exp(-d2 / (2 * 4.5**2)).astype(np.float32)
    return (total[:, None] * WARM_LIGHT * 0.25 * lighting.lamp_strength).astype(np.float32)


def sky_colour(
    camera: Camera, rays: Rays, lighting: Lighting, appearance: Appearance,
    rows: np.ndarray, cols: np.ndarray,
) -> np.ndarray:
    """Linear RGB of the sky at pixels (rows, cols): gradient, sun glow, clouds."""
    norm = np.sqrt(1.0 + rays.lateral[cols] ** 2)
    tan_elevation = rays.slope[rows] / norm
    blend = np.clip(tan_elevation / 0.6, 0.0, 1.0)[:, None] ** 0.6
    colour = lighting.sky_horizon * (1 - blend) + lighting.sky_zenith * blend
    azimuth = np.radians(camera.heading) + np.arctan(rays.lateral[cols])
    if appearance.time_of_day == "sunset":
        offset = np.angle(np.exp(1j * (azimuth - np.radians(appearance.sun_azimuth))))
        glow = np.exp(-(offset**2) / 0.4) * np.exp(-np.maximum(tan_elevation, 0) / 0.15)
        colour = colour + glow[:, None] * np.array([0.6, 0.35, 0.1])
    # Clouds on a plane above the city, moving with the image's salt.
    reach = 1.0 / np.maximum(tan_elevation, 0.04)
    cloud_x = np.sin(azimuth) * reach * 1.2 + appearance.salt % 1000
    cloud_y = np.cos(azimuth) * reach * 1.2
    noise = 0.65 * value_noise(cloud_x, cloud_y, appearance.salt) + 0.35 * value_noise(
        cloud_x * 2.7, cloud_y * 2.7, appearance.salt + 1)
    threshold = 1.0 - appearance.cloudiness
    cover = np.clip((noise - threshold + 0.15) / 0.3, 0.0, 1.0) * np.clip(
        tan_elevation / 0.08, 0.0, 1.0)
    return colour * (1 - cover[:, None]) + lighting.cloud_colour * cover[:, None]


def ground_colour(
    city: City, camera: Camera, lighting: Lighting, x: np.ndarray, y: np.ndarray,
    depth: np.ndarray,
) -> np.ndarray:
    """Linear RGB of the ground at points (x, y): road, markings, sidewalks, lots."""
    streets = city.streets

    def nearest(lines: np.ndarray, widths: np.ndarray, value: np.ndarray):
        index = np.clip(np.searchsorted(lines, value), 1, len(lines) - 1)
        left = np.abs(value - lines[index - 1])
        right = np.abs(value - lines[index])
        use_left = left < right
        distance = np.where(use_left, left, right)
        half = np.where(use_left, widths[index - 1], widths[index]) / 2
        return distance, half

    dist_x, half_x = nearest(streets.xs, streets.x_widths, x)
    dist_y, half_y = nearest(streets.ys, streets.y_widths, y)
    road_v = dist_x < half_x - SIDEWALK_WIDTH
    road_h = dist_y < half_y - SIDEWALK_WIDTH
    road = road_v | road_h
    street = (dist_x < half_x) | (dist_y < half_y)
    grain = hash_unit(np.floor(x * 1.5), np.floor(y * 1.5), 3)  # paving slabs, patches
    colour = np.empty((len(x), 3), dtype=np.float32)
    colour[:] = np.array([0.30, 0.31, 0.25])  # lots and parks
    colour[street & ~road] = np.array([0.42, 0.41, 0.39])
    colour[road] = np.array([0.16, 0.16, 0.17])
    colour *= (0.9 + 0.15 * grain)[:, None]
    fade = np.clip(1.0 - depth / 80.0, 0.0, 1.0)  # thin markings vanish with distance
    dash_v = road_v & ~road_h & (dist_x < 0.12) & ((y / 6.0) % 1.0 < 0.5)
    dash_h = road_h & ~road_v & (dist_y < 0.12) & ((x / 6.0) % 1.0 < 0.5)
    zebra_v = road_v & (dist_y > half_y - SIDEWALK_WIDTH) & (dist_y < half_y) & ((x % 1.0) < 0.5)
    zebra_h = road_h & (dist_x > half_x - SIDEWALK_WIDTH) & (dist_x < half_x) & ((y % 1.0) < 0.5)
    marking = dash_v | dash_h | zebra_v | zebra_h
    colour[marking] += (np.array([0.55, 0.55, 0.5]) * fade[marking, None]).astype(np.float32)
    light = lighting.ambient + lighting.sun_colour * 0.6
    light = light + lamp_light(city, camera, lighting, x, y, np.zeros_like(x))
    return colour * light


def render_linear(
    city: City, camera: Camera, appearance: Appearance, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Renders linear RGB (H, W, 3) float32 and the depth in metres (inf for sky)."""
    lighting = lighting_for(appearance)
    rays = camera_rays(camera, width, height)
    hits = cast_columns(city, camera, rays)
    image = np.zeros((height, width, 3), dtype=np.float32)
    depth = np.full((height, width), np.inf)

    # Facades: per pixel, the nearest hit whose building reaches the pixel's height.
    tops = np.where(np.isfinite(hits.depth), city.buildings.height[hits.building], -1.0)
    z = camera.height + hits.depth[None, :, :] * rays.slope[:, None, None]
    visible = (z >= 0.0) & (z <= tops[None, :, :])
    facade = visible.any(axis=2)
    layer_of = visible.argmax(axis=2)
    rows, cols = np.nonzero(facade)
    layer = layer_of[rows, cols]
    t = hits.depth[cols, layer]
    points = FacadeHits(
        building=hits.building[cols, layer],
        face=hits.face[cols, layer],
        u=hits.u[cols, layer],
        z=camera.height + t * rays.slope[rows],
        x=camera.x + t * rays.directions[cols, 0],
        y=camera.y + t * rays.directions[cols, 1],
    )
    lamps = lamp_light(city, camera, lighting, points.x, points.y, points.z)
    image[rows, cols] = shade_facades(city, points, appearance, lighting, lamps)
    depth[rows, cols] = t

    # Ground below the horizon where no facade is in front.
    below = (rays.slope < 0)[:, None] & ~facade
    rows, cols = np.nonzero(below)
    t = camera.height / -rays.slope[rows]
    gx = camera.x + t * rays.directions[cols, 0]
    gy = camera.y + t * rays.directions[cols, 1]
    image[rows, cols] = ground_colour(city, camera, lighting, gx, gy, t)
    depth[rows, cols] = t

    rows, cols = np.nonzero(~facade & ~below)
    image[rows, cols] = sky_colour(camera, rays, lighting, appearance, rows, cols)

    items = static_billboards(city, camera, radius=100.0)
    items += transient_billboards(city, camera, appearance)
    draw_billboards(image, depth, items, camera, rays, lighting)

    if np.isfinite(lighting.fog_distance):
        # Sky counts as 400 m away: dense fog swallows it, light haze leaves it blue.
        transmit = np.exp(-np.minimum(depth, 400.0) / lighting.fog_distance)[..., None]
        image = image * transmit + lighting.fog_colour * (1.0 - transmit)
    return image.astype(np.float32), depth


def render(
    city: City, camera: Camera, appearance: Appearance, width: int, height: int,
    supersample: int = 2,
) -> np.ndarray:
    """Renders a ``width`` x ``height`` linear RGB image, averaging supersample^2 rays/pixel."""
    image, _ = render_linear(city, camera, appearance, width * supersample,
                             height * supersample)
    if supersample > 1:
        image = image.reshape(height, supersample, width, supersample, 3).mean(axis=(1, 3))
    return image
