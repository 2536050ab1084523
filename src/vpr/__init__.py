"""vpr: visual place recognition (image geolocalization through retrieval)."""

__version__ = "0.1.0"
