"""Placing generated cities on Earth: local metres to UTM and latitude/longitude."""

from __future__ import annotations

from dataclasses import dataclass

import utm

# Real city centres (latitude, longitude). Training cities take GSV-Cities' names; the test
# cities are San Francisco (SF-XS) and Tokyo (Tokyo-XS), never used for training.
TRAIN_CITY_CENTRES: dict[str, tuple[float, float]] = {
    "Bangkok": (13.7563, 100.5018),
    "Barcelona": (41.3874, 2.1686),
    "Boston": (42.3601, -71.0589),
    "Brussels": (50.8503, 4.3517),
    "BuenosAires": (-34.6037, -58.3816),
    "Chicago": (41.8781, -87.6298),
    "Lisbon": (38.7223, -9.1393),
    "London": (51.5074, -0.1278),
    "LosAngeles": (34.0522, -118.2437),
    "Madrid": (40.4168, -3.7038),
    "Melbourne": (-37.8136, 144.9631),
    "MexicoCity": (19.4326, -99.1332),
    "Miami": (25.7617, -80.1918),
    "Minneapolis": (44.9778, -93.2650),
    "Osaka": (34.6937, 135.5023),
    "Phoenix": (33.4484, -112.0740),
    "Prague": (50.0755, 14.4378),
    "Rome": (41.9028, 12.4964),
    "Toronto": (43.6532, -79.3832),
    "WashingtonDC": (38.9072, -77.0369),
}
TEST_CITY_CENTRES: dict[str, tuple[float, float]] = {
    "SanFrancisco": (37.7749, -122.4194),
    "Tokyo": (35.6762, 139.6503),
}


@dataclass(frozen=True)
class GeoFrame:
    """Maps a city's local metres (x east, y north) to UTM and WGS84 around a real centre."""

    east0: float
    north0: float
    zone_number: int
    zone_letter: str

    @classmethod
    def around(cls, latitude: float, longitude: float, extent: tuple[float, float]) -> GeoFrame:
        """A frame whose local extent (width, height) in metres is centred on a lat/lon."""
        east, north, zone_number, zone_letter = utm.from_latlon(latitude, longitude)
        return cls(east - extent[0] / 2, north - extent[1] / 2, zone_number, zone_letter)

    def to_utm(self, x: float, y: float) -> tuple[float, float]:
        """UTM (east, north) in metres of a local point."""
        return self.east0 + x, self.north0 + y

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        """(latitude, longitude) in degrees of a local point."""
        east, north = self.to_utm(x, y)
        latitude, longitude = utm.to_latlon(east, north, self.zone_number, self.zone_letter)
        return float(latitude), float(longitude)
