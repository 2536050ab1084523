"""Is `vpr locate`'s confidence calibrated? Accuracy per confidence bin on a test set.

Indexes TESTSET/database with the model of CKPT (or uses --index), locates every image of
TESTSET/queries, and prints, per confidence bin, how many predictions fall within
--within metres of the query's true position (from its @-name).

    python bench/calibration.py CKPT TESTSET [--top_k 5] [--radius 25] [--within 25]
        [--rerank K --rerank_method backbone ...]

With ``--rerank K`` (and the other options of `vpr locate`'s re-ranking), the top K matches
are verified first and their inliers feed the vote and the confidence.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from vpr.data.geotag import parse_filename
from vpr.data.images import list_images
from vpr.locate import LocationIndex, calibration_table, format_calibration_table, locate
from vpr.locate.calibration import prediction_errors
from vpr.rerank.options import add_rerank_options, build_reranker, rerank_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ckpt", type=Path, help="a checkpoint of vpr train")
    parser.add_argument("testset", type=Path, help="a folder with database/ and queries/")
    parser.add_argument("--index", type=Path, default=None,
                        help="an existing index of TESTSET/database (default: build one)")
    parser.add_argument("--index_type", default="flat", help="flat, ivf, hnsw or ivfpq")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--radius", type=float, default=25.0, help="cluster radius, metres")
    parser.add_argument("--within", type=float, default=25.0,
                        help="a prediction is accurate within this many metres")
    parser.add_argument("--bins", type=float, nargs="+", default=[0, .2, .4, .6, .8, 1])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=None, help="use the first N queries")
    add_rerank_options(parser)
    args = parser.parse_args()

    queries = list_images(args.testset / "queries")[: args.limit]
    true_utm = np.array([(t.utm_east, t.utm_north) for t in map(parse_filename, queries)])
    with tempfile.TemporaryDirectory() as folder:
        if args.index is None:
            index = LocationIndex.build(Path(folder) / "index", args.ckpt,
                                        args.testset / "database", index_type=args.index_type,
                                        batch_size=args.batch_size, device=args.device,
                                        progress=True)
        else:
            index = LocationIndex.load(args.index)
        model = index.load_model(args.ckpt)
        settings = rerank_settings(args)
        reranker = build_reranker(settings, model) if settings else None
        results = locate(queries, index, top_k=args.top_k, radius_m=args.radius,
                         batch_size=args.batch_size, device=args.device, progress=True,
                         model=model, reranker=reranker)
    errors = prediction_errors(results, true_utm)
    top1 = np.array([[r.matches[0].utm_east, r.matches[0].utm_north] if r.matches
                     else [np.inf, np.inf] for r in results])
    top1_errors = np.hypot(*(top1 - true_utm).T)
    confidences = [result.confidence for result in results]
    rows = calibration_table(confidences, errors, within_m=args.within, bins=args.bins)
    print(f"{args.testset}: {len(results)} queries, {len(index)} database images, "
          f"top_k={args.top_k}, cluster radius {args.radius:g} m"
          + (f", re-ranked: {settings}" if settings else ""))
    print(f"accuracy within {args.within:g} m: clustered prediction "
          f"{np.mean(errors <= args.within) * 100:.1f}%, top-1 match "
          f"{np.mean(top1_errors <= args.within) * 100:.1f}%; median error "
          f"{np.median(errors):.1f} m")
    print(format_calibration_table(rows, within_m=args.within))


if __name__ == "__main__":
    main()
