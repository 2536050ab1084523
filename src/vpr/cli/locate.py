"""`vpr locate`: where was this photo taken? Retrieval in a location index, then a vote."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vpr.cli.flags import add_device_options, device_of, precision_of
from vpr.cli.geo_prior import add_geo_prior_options, read_geo_prior, resolve_radius_options
from vpr.cli.published import (
    MOVED_WEIGHTS_HELP,
    add_published_model_options,
    model_file_of_index,
)
from vpr.export.options import add_runtime_options, runtime_from_args
from vpr.rerank.options import add_rerank_options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "locate", help="predict where photos were taken, using a location index",
        description="Describe each PHOTO with the index's model, retrieve its --top_k most "
                    "similar indexed images, cluster them in space (--radius) and print the "
                    "similarity-weighted centre of the strongest cluster, with a confidence "
                    "in [0, 1] and the matches. Build the index with `vpr index build`.",
    )
    parser.add_argument("photos", nargs="+", metavar="PHOTO",
                        help="image files, or folders of images")
    parser.add_argument("--index", required=True, help="a folder made by `vpr index build`")
    parser.add_argument("--top_k", type=int, default=5,
                        help="matches retrieved per photo (default: 5)")
    parser.add_argument("--cluster_radius", type=float, default=None, metavar="M",
                        help="matches within this many metres form a cluster (default: 25)")
    parser.add_argument("--radius", type=float, default=None, metavar="M",
                        help="with --near: the GPS fix's error in metres (same as "
                             "--near_radius); without --near: deprecated spelling of "
                             "--cluster_radius")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--map", type=Path, default=None, metavar="HTML",
                        help="write one self-contained HTML map of the photos "
                             "(OpenStreetMap tiles when online; offline, the points, radius "
                             "and scale on a plain background)")
    parser.add_argument("--grid", type=Path, default=None, metavar="JPG",
                        help="write an image: each photo beside its matches")
    parser.add_argument("--ckpt_path", default=None,
                        help="the index's checkpoint, if it moved (checked by sha256)")
    add_published_model_options(parser, weights_help=MOVED_WEIGHTS_HELP)
    parser.add_argument("--batch_size", type=int, default=32,
                        help="photos per forward pass (default: 32)")
    add_device_options(parser)
    parser.add_argument("--nprobe", type=int, default=None,
                        help="ivf/ivfpq indexes: lists visited per query (default: as built)")
    add_runtime_options(parser)
    add_geo_prior_options(parser)
    add_min_confidence_option(parser)
    add_rerank_options(parser)
    parser.set_defaults(func=run)


def add_min_confidence_option(parser: argparse.ArgumentParser) -> None:
    """``--min_confidence X`` of `vpr locate` and `vpr serve` (`locate(min_confidence=)`)."""
    parser.add_argument("--min_confidence", type=float, default=None, metavar="X",
                        help="report a prediction whose confidence is below X (in [0, 1]) as "
                             "unknown (default: always give the prediction)")


def _photos(items: list[str]) -> list[Path]:
    from vpr.data.images import list_images

    paths: list[Path] = []
    for item in items:
        path = Path(item)
        paths.extend(list_images(path) if path.is_dir() else [path])
    return paths


def _format(result) -> str:
    from vpr.locate.geodesy import format_distance

    def latlon(latitude, longitude) -> str:
        return "?, ?" if latitude is None else f"{latitude:.6f}, {longitude:.6f}"

    zone = f"{result.utm_zone_number or ''}{result.utm_zone_letter}"
    lines = [result.photo]
    if result.unknown:
        lines.append(f"  location: unknown ({result.unknown_reason or 'no match found'})")
        if not result.matches:
            return "\n".join(lines)
    else:
        lines.append(f"  location: {latlon(result.latitude, result.longitude)} "
                     f"(UTM {zone} {result.utm_east:.1f} E {result.utm_north:.1f} N)")
    lines.append(f"  confidence: {result.confidence:.2f} ({result.cluster_size} of "
                 f"{len(result.matches)} matches within {result.radius_m:g} m)")
    verified = any(match.inliers is not None for match in result.matches)
    lines.append(f"  {'#':>3} {'similarity':>10}{' inliers' if verified else ''} "
                 f"{'to pred.':>9}  {'lat, lon':<23} image")
    for match in result.matches:
        inliers = f" {match.inliers:>7}" if verified else ""
        distance = format_distance(match.distance_to_prediction_m)
        marker = "*" if match.in_cluster else " "
        lines.append(f"  {match.rank:>3} {match.similarity:>10.3f}{inliers} {distance:>9}{marker} "
                     f"{latlon(match.latitude, match.longitude):<23} {match.path}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from vpr.locate import LocationIndex, locate
    from vpr.locate.predict import prior_ids
    from vpr.rerank.options import build_reranker, rerank_settings
    from vpr.utils.disk import check_writable

    # A read-only or full disk, or a folder given for a file, fails before the search.
    if args.map is not None:
        from vpr.locate.render import check_map_target

        check_map_target(args.map)
    if args.grid is not None:
        check_writable(Path(args.grid).parent, "folder of --grid")
    cluster_radius = resolve_radius_options(args)
    prior = read_geo_prior(args)
    index = LocationIndex.load(args.index, nprobe=args.nprobe)
    prior_ids(index, prior)  # no image near --near: said before the model is loaded
    model = index.load_model(model_file_of_index(index, args), runtime=runtime_from_args(args))
    settings = rerank_settings(args)
    reranker = build_reranker(settings, model) if settings else None
    results = locate(_photos(args.photos), index, top_k=args.top_k, radius_m=cluster_radius,
                     batch_size=args.batch_size, device=device_of(args),
                     precision=precision_of(args), model=model,
                     prior=prior, reranker=reranker, min_confidence=args.min_confidence)
    if args.json:
        print(json.dumps([result.to_dict() for result in results], indent=2))
    else:
        print("\n\n".join(_format(result) for result in results))
    if args.map:
        from vpr.locate.render import render_map

        path = render_map(results, args.map)
        if not args.json:
            print(f"\nMap: {path}")
    if args.grid:
        from vpr.locate.render import render_grid

        path = render_grid(results, args.grid)
        if not args.json:
            print(f"Grid: {path}")
    return 0
