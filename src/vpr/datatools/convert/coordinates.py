"""Geotags from UTM or from latitude/longitude, with every position field filled."""

from __future__ import annotations

import utm

from vpr.data.geotag import GeoTag
from vpr.datatools.convert.plan import ConvertError


def tag_from_utm(east: float, north: float, zone_number: int, zone_letter: str,
                 **fields: object) -> GeoTag:
    """A geotag at UTM ``east``/``north`` of a known zone; latitude/longitude derived."""
    latitude, longitude = utm.to_latlon(east, north, zone_number, zone_letter, strict=False)
    return GeoTag(utm_east=float(east), utm_north=float(north), utm_zone_number=zone_number,
                  utm_zone_letter=zone_letter, latitude=float(latitude),
                  longitude=float(longitude), **fields)  # type: ignore[arg-type]


def tag_from_latlon(latitude: float, longitude: float, source: str = "",
                    **fields: object) -> GeoTag:
    """A geotag at ``latitude``/``longitude``; UTM east/north/zone derived."""
    if not (-80.0 <= latitude <= 84.0 and -180.0 <= longitude <= 180.0):
        raise ConvertError(f"{source}: latitude/longitude {latitude}, {longitude} out of range")
    east, north, zone_number, zone_letter = utm.from_latlon(latitude, longitude)
    return GeoTag(utm_east=float(east), utm_north=float(north), utm_zone_number=int(zone_number),
                  utm_zone_letter=str(zone_letter), latitude=float(latitude),
                  longitude=float(longitude), **fields)  # type: ignore[arg-type]
