"""Shading of facade pixels: walls, window grids, shop fronts, signs, doors, lit windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vpr.synthetic.appearance import Appearance, Lighting
from vpr.synthetic.city import FACE_NORMALS, City
from vpr.synthetic.rng import hash_unit

WARM_LIGHT = np.array([1.0, 0.78, 0.45], dtype=np.float32)


@dataclass(frozen=True)
class FacadeHits:
    """The facade points seen by some pixels (1D arrays, one entry per pixel)."""

    building: np.ndarray  # building index
    face: np.ndarray  # face id (see city.FACE_NORMALS)
    u: np.ndarray  # metres along the face
    z: np.ndarray  # metres above the ground
    x: np.ndarray  # world position of the point
    y: np.ndarray


def _window_colour(
    glass: np.ndarray, light: np.ndarray, lighting: Lighting, lit: np.ndarray,
    variation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Reflected and emitted light of window glass."""
    reflected = glass * light * 0.7 + lighting.sky_horizon * (0.12 + 0.2 * variation[:, None])
    if lighting.night:
        reflected = glass * light
    emitted = lit[:, None] * WARM_LIGHT * (0.3 + 0.5 * variation[:, None])
    return reflected, emitted


def shade_facades(
    city: City, hits: FacadeHits, appearance: Appearance, lighting: Lighting,
    lamp_light: np.ndarray,
) -> np.ndarray:
    """Linear RGB of each facade point (``lamp_light`` is the street-lamp light there)."""
    buildings, styles = city.buildings, city.styles
    b, u, z = hits.building, hits.u, hits.z
    style = buildings.style[b]
    ground_h = styles.ground_height[style]
    floor_h = styles.floor_height[style]
    spacing = styles.window_spacing[style]
    window_w = styles.window_width[style]
    window_h = styles.window_height[style]
    top = buildings.height[b]
    front = hits.face == buildings.front[b]
    later = appearance.epoch >= 1

    wall = styles.wall[style] * buildings.tint[b]
    if later:
        wall = np.where(buildings.repaint[b][:, None], buildings.repaint_colour[b], wall)
    trim = styles.trim[style]

    # Light falling on the facade: sky ambient + sun on faces turned towards it + lamps.
    normals = FACE_NORMALS[hits.face]
    facing_sun = np.clip(normals @ lighting.sun_direction, 0.0, 1.0)
    light = lighting.ambient + facing_sun[:, None] * lighting.sun_colour * 0.8 + lamp_light
    light = light * (0.75 + 0.25 * np.clip(z / 3.0, 0.0, 1.0))[:, None]  # darker near ground

    # Upper floors: a grid of windows (on the street face, and on some side walls).
    upper = (z >= ground_h) & (z < top - 0.9)
    level = (z - ground_h) / floor_h
    floor_index = np.floor(level)
    fz = level - floor_index
    column = (u - buildings.phase[b]) / spacing
    column_index = np.floor(column)
    fu = column - column_index
    has_windows = upper & (front | buildings.side_windows[b])
    inside = np.abs(fu - 0.5) < window_w / 2
    rows = (fz > 0.22) & (fz < 0.22 + window_h)
    window = has_windows & inside & rows
    frame = has_windows & ~window & (np.abs(fu - 0.5) < window_w / 2 + 0.06) & (
        fz > 0.17) & (fz < 0.27 + window_h)
    # Floors weather differently: a slight brightness change from one floor to the next.
    albedo = wall * (0.94 + 0.12 * hash_unit(b, floor_index, 17))[:, None]
    band = upper & styles.bands[style] & (fz < 0.07)
    cornice = z >= top - 0.9
    albedo[frame | band | cornice] = trim[frame | band | cornice]

    # Ground floor of the street face: shop front or windows, a door, a sign, an awning.
    ground = front & (z < ground_h)
    shop = ground & buildings.shop[b]
    bay = u / 3.4
    bay_f = bay - np.floor(bay)
    shop_glass = shop & (z > 0.5) & (z < ground_h - 1.25) & (np.abs(bay_f - 0.5) < 0.4)
    plain_window = ground & ~buildings.shop[b] & inside & (z > 1.0) & (z < 2.5)
    door = ground & (np.abs(u - buildings.door_u[b]) < 0.65) & (z < 2.3)
    has_sign = buildings.sign[b]
    sign_colour = buildings.sign_colour[b]
    if later:
        has_sign = has_sign | buildings.new_sign[b]
        sign_colour = np.where(buildings.new_sign[b][:, None], buildings.new_sign_colour[b],
                               sign_colour)
    span = buildings.sign_span[b]
    sign = ground & has_sign & (z > ground_h - 1.15) & (z < ground_h - 0.3) & (
        u > span[:, 0]) & (u < span[:, 1])
    awning = shop & buildings.awning[b] & (z > ground_h - 1.75) & (z < ground_h - 1.15)

    colour = albedo * light
    emitted = np.zeros_like(colour)
    salt = appearance.salt
    glass_style = styles.glass[style]
    # The details below are shaded only where they are, in this order (later ones on top).
    at = np.flatnonzero(window | plain_window)
    variation = hash_unit(b[at], floor_index[at], column_index[at], hits.face[at])
    lit = hash_unit(b[at], floor_index[at], column_index[at], hits.face[at], salt)
    colour[at], emitted[at] = _window_colour(
        glass_style[at], light[at], lighting,
        (lit < lighting.window_lit_rate).astype(np.float32), variation)

    at = np.flatnonzero(shop_glass)
    shop_lit = hash_unit(b[at], 11, salt) < lighting.sign_lit_rate
    colour[at] = glass_style[at] * light[at] * 0.6 + lighting.sky_horizon * 0.1
    emitted[at] = shop_lit[:, None] * WARM_LIGHT * 0.8

    at = np.flatnonzero(door)
    colour[at] = trim[at] * 0.35 * light[at]
    emitted[at] = 0.0

    at = np.flatnonzero(sign)
    letter_pos = (u[at] - span[at, 0]) / 0.5
    letter_z = (z[at] - (ground_h[at] - 1.15)) / 0.85
    letter_f = letter_pos - np.floor(letter_pos)
    letters = (hash_unit(b[at], np.floor(letter_pos), 7) < 0.7) & (
        np.abs(letter_f - 0.5) < 0.32) & (np.abs(letter_z - 0.5) < 0.25)
    sign_albedo = np.where(letters[:, None], 1.0 - sign_colour[at] * 0.9, sign_colour[at])
    sign_lit = hash_unit(b[at], 13, salt) < lighting.sign_lit_rate
    colour[at] = sign_albedo * light[at]
    emitted[at] = sign_lit[:, None] * sign_albedo * 0.9

    at = np.flatnonzero(awning)
    stripes = (np.floor(u[at] / 0.5) % 2) == 0
    colour[at] = np.where(stripes[:, None], buildings.awning_colour[b[at]], 0.85) * light[at]
    emitted[at] = 0.0
    return colour + emitted
