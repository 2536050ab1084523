"""Geolocating photos: a saved index of geotagged descriptors, and `locate(photos, index)`."""

from vpr.locate.calibration import calibration_table, format_calibration_table
from vpr.locate.index import LocationIndex, LocationIndexError
from vpr.locate.predict import LocateResult, Match, locate, predict_location

__all__ = [
    "LocateResult",
    "LocationIndex",
    "LocationIndexError",
    "Match",
    "calibration_table",
    "format_calibration_table",
    "locate",
    "predict_location",
]
