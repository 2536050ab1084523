"""Distances on the Earth and the latitude/longitude box around a circle, for the geographic prior.

`vpr locate --near LAT,LON --radius M` keeps only the indexed images within M metres of a
GPS fix. The store finds candidates with a range query on a latitude/longitude box (cheap,
indexed) and keeps those whose great-circle distance is within the radius (exact). The box
around a spherical cap of angular radius ``r / R`` centred at latitude ``phi`` spans::

    latitudes   phi - r/R .. phi + r/R
    longitudes  lambda +- asin(sin(r/R) / cos(phi))

(the tangent meridians of the cap), or every longitude when the cap reaches a pole; a range
that crosses the antimeridian is split in two.
"""

from __future__ import annotations

import math

import numpy as np

# Mean Earth radius (IUGG R1), in metres.
EARTH_RADIUS_M = 6_371_008.8


class GeoPriorError(ValueError):
    """A malformed ``near`` / radius, or a prior no indexed image lies within."""


def parse_near(text: str) -> tuple[float, float]:
    """``"48.85,2.35"`` -> (48.85, 2.35), checked to be a valid latitude, longitude.

    Raises:
        GeoPriorError: not two numbers, or out of range.
    """
    parts = [part.strip() for part in str(text).split(",")]
    try:
        latitude, longitude = (float(part) for part in parts)
    except ValueError:
        raise GeoPriorError(f"near {text!r}: expected LAT,LON in degrees, e.g. 48.8584,2.2945"
                            ) from None
    if not (math.isfinite(latitude) and math.isfinite(longitude)) or abs(latitude) > 90 \
            or abs(longitude) > 180:
        raise GeoPriorError(f"near {text!r}: latitude must be in [-90, 90] and longitude in "
                            "[-180, 180]")
    return latitude, longitude


def check_radius(radius_m: float) -> float:
    """The radius of a geographic prior, checked to be a positive number of metres."""
    if not (isinstance(radius_m, (int, float)) and math.isfinite(radius_m) and radius_m > 0):
        raise GeoPriorError(f"near radius must be a positive number of metres, got {radius_m}")
    return float(radius_m)


def haversine_m(latitude: float, longitude: float, latitudes: np.ndarray,
                longitudes: np.ndarray) -> np.ndarray:
    """Great-circle distances in metres from one point to many (degrees in, metres out)."""
    phi1 = math.radians(latitude)
    phi2 = np.radians(np.asarray(latitudes, dtype=np.float64))
    dphi = phi2 - phi1
    dlambda = np.radians(np.asarray(longitudes, dtype=np.float64) - longitude)
    a = np.sin(dphi / 2) ** 2 + math.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def bounding_boxes(latitude: float, longitude: float, radius_m: float
                   ) -> list[tuple[float, float, float, float]]:
    """Latitude/longitude boxes that together contain the circle (formula in the docstring).

    Returns:
        One or two ``(min_lat, max_lat, min_lon, max_lon)`` boxes (two when the longitude
        range crosses the antimeridian).
    """
    angle = radius_m / EARTH_RADIUS_M
    if angle >= math.pi:
        return [(-90.0, 90.0, -180.0, 180.0)]
    dlat = math.degrees(angle)
    low, high = latitude - dlat, latitude + dlat
    if low <= -90.0 or high >= 90.0:  # the cap holds a pole: every longitude
        return [(max(low, -90.0), min(high, 90.0), -180.0, 180.0)]
    dlon = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(math.radians(latitude)))))
    if dlon >= 180.0:
        return [(low, high, -180.0, 180.0)]
    west, east = longitude - dlon, longitude + dlon
    if west < -180.0:
        return [(low, high, west + 360.0, 180.0), (low, high, -180.0, east)]
    if east > 180.0:
        return [(low, high, west, 180.0), (low, high, -180.0, east - 360.0)]
    return [(low, high, west, east)]
