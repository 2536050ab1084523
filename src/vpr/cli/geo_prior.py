"""`--near LAT,LON --near_radius M` of `vpr locate`: search only near a GPS fix."""

from __future__ import annotations

import argparse
import sys
import warnings

DEFAULT_NEAR_RADIUS_M = 100.0
DEFAULT_CLUSTER_RADIUS_M = 25.0


def add_geo_prior_options(parser: argparse.ArgumentParser) -> None:
    """The geographic prior: a GPS fix and its error radius."""
    parser.add_argument("--near", default=None, metavar="LAT,LON",
                        help="search only the indexed images within --near_radius metres of "
                             "this point (a GPS fix), e.g. --near 48.8584,2.2945")
    parser.add_argument("--near_radius", type=float, default=None,
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


def resolve_radius_options(args: argparse.Namespace) -> float:
    """Sorts out `--radius`, `--near_radius` and `--cluster_radius`; returns the cluster radius.

    `--near LAT,LON --radius M` is the geographic prior's spelling; `--near_radius` says the
    same. Without `--near`, `--radius` keeps its old meaning (the clustering radius) for one
    release, with a deprecation warning pointing to `--cluster_radius`. Sets
    `args.near_radius` (default 100 m).
    """
    from vpr.locate.geo import GeoPriorError

    radius = getattr(args, "radius", None)
    near_radius = getattr(args, "near_radius", None)
    cluster_radius = getattr(args, "cluster_radius", None)
    if getattr(args, "near", None) is not None and radius is not None:
        if near_radius is not None and near_radius != radius:
            raise GeoPriorError(f"--radius {radius:g} and --near_radius {near_radius:g} "
                                "disagree; give one of them")
        near_radius = radius
    elif radius is not None:
        if cluster_radius is not None and cluster_radius != radius:
            raise GeoPriorError(f"--radius {radius:g} and --cluster_radius "
                                f"{cluster_radius:g} disagree; give --cluster_radius only")
        warnings.warn("--radius without --near is deprecated: use --cluster_radius",
                      DeprecationWarning, stacklevel=2)
        print("vpr: warning: --radius without --near is deprecated; use --cluster_radius",
              file=sys.stderr)
        cluster_radius = radius
    args.near_radius = DEFAULT_NEAR_RADIUS_M if near_radius is None else near_radius
    return DEFAULT_CLUSTER_RADIUS_M if cluster_radius is None else cluster_radius
