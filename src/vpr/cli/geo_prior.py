"""`--near LAT,LON --near_radius M` of `vpr locate`: search only near a GPS fix."""

from __future__ import annotations

import argparse

DEFAULT_NEAR_RADIUS_M = 100.0


def add_geo_prior_options(parser: argparse.ArgumentParser) -> None:
    """The geographic prior: a GPS fix and its error radius."""
    parser.add_argument("--near", default=None, metavar="LAT,LON",
                        help="search only the indexed images within --near_radius metres of "
                             "this point (a GPS fix), e.g. --near 48.8584,2.2945")
    parser.add_argument("--near_radius", type=float, default=DEFAULT_NEAR_RADIUS_M,
                        metavar="M",
                        help="with --near: the fix's error, in metres (great-circle distance; "
                             f"default: {DEFAULT_NEAR_RADIUS_M:g})")


def read_geo_prior(args: argparse.Namespace):
    """The `GeoPrior` the options ask for, or None.

    Raises:
        GeoPriorError: a malformed --near or --near_radius.
    """
    if getattr(args, "near", None) is None:
        return None
    from vpr.locate.geo import check_radius, parse_near
    from vpr.locate.predict import GeoPrior

    latitude, longitude = parse_near(args.near)
    return GeoPrior(latitude, longitude, check_radius(args.near_radius))
