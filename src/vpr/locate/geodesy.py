"""Distances between places as people mean them: along the WGS84 ellipsoid.

Every distance shown to users (`vpr locate`, its JSON and map, the page of `vpr serve`)
comes from `geodesic_m`, which works between any two points on Earth: different UTM zones,
hemispheres, across the antimeridian. UTM metres stay only inside the vote of
`vpr.locate.predict`, where the matches compared share one zone.
"""

from __future__ import annotations

import math

from geographiclib.geodesic import Geodesic


def geodesic_m(latitude_a: float, longitude_a: float, latitude_b: float,
               longitude_b: float) -> float:
    """The shortest distance in metres between two points on the WGS84 ellipsoid.

    Karney's algorithm (geographiclib): accurate to nanometres, also for nearly antipodal
    points, where Vincenty's iteration may fail to converge.

    Raises:
        ValueError: a latitude outside [-90, 90] or a coordinate that is not finite.
    """
    for value in (latitude_a, longitude_a, latitude_b, longitude_b):
        if not math.isfinite(value):
            raise ValueError(f"coordinates must be finite numbers, got {value}")
    for latitude in (latitude_a, latitude_b):
        if abs(latitude) > 90:
            raise ValueError(f"latitude must be within [-90, 90], got {latitude}")
    line = Geodesic.WGS84.Inverse(latitude_a, longitude_a, latitude_b, longitude_b,
                                  Geodesic.DISTANCE)
    return float(line["s12"])


def latlon_of(latitude: float | None, longitude: float | None, utm_east: float | None,
              utm_north: float | None, zone_number: int | None, zone_letter: str | None
              ) -> tuple[float, float] | None:
    """A point's latitude/longitude: as recorded, else from its UTM position, else None."""
    if latitude is not None and longitude is not None:
        return float(latitude), float(longitude)
    if utm_east is None or utm_north is None or zone_number is None or not zone_letter:
        return None
    import utm

    try:
        converted = utm.to_latlon(utm_east, utm_north, zone_number, zone_letter)
    except (utm.error.OutOfRangeError, ValueError):
        return None
    return float(converted[0]), float(converted[1])


def format_distance(metres: float | None) -> str:
    """``"12 m"`` below a kilometre, ``"3.42 km"`` above, ``"?"`` when unknown."""
    if metres is None:
        return "?"
    if metres >= 1000:
        return f"{metres / 1000:,.2f} km"
    return f"{metres:.0f} m"
