"""Re-ranking on test sets: R@1 before and after, per query group, and the cost per query.

For each TESTSET (a folder with database/ and queries/), describes every image with the
model of CKPT, retrieves the top max(K) by global descriptor, then for each local-feature
method and each K re-ranks the top K by verified inliers and reports R@1 / R@5 overall and
per group (day / sunset / night in Tokyo-like names), the milliseconds per query spent on
re-ranking (query local features + matching + verification; the database's local features
are computed once beforehand, as `vpr index` / `vpr test` cache them) and the loop-closure
summary (average precision, recall at 100% precision) of the top-1 similarity before and of
the top-1 inliers after.

    python bench/rerank.py CKPT TESTSET [TESTSET...] [--k 10 100]
        [--methods backbone sift orb] [--threads 2] [--json out.json]

Two ordering rules are scored from the same inliers: ``inliers`` (most inliers first, ties
by similarity) and ``blend`` (similarity + inliers / 50).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostinfo import cpu_model  # noqa: E402

from vpr.data.datasets import RetrievalSet  # noqa: E402
from vpr.eval.extract import ImageFolderDataset, extract_descriptors  # noqa: E402
from vpr.eval.grouping import query_groups  # noqa: E402
from vpr.eval.loop_closure import loop_closure_metrics  # noqa: E402
from vpr.eval.search import search  # noqa: E402
from vpr.inputs.decode import UInt8Reader  # noqa: E402
from vpr.locate.index import load_model  # noqa: E402
from vpr.rerank import GeometricVerifier, Reranker, build_method, rerank_order  # noqa: E402


def recalls(predictions: np.ndarray, positives: list[set[int]], rows: np.ndarray,
            n_values=(1, 5)) -> dict[str, float]:
    """R@N in percent over the queries ``rows``."""
    return {f"R@{n}": float(np.mean([bool(set(predictions[q, :n].tolist()) & positives[q])
                                     for q in rows]) * 100) if len(rows) else float("nan")
            for n in n_values}


def summary(predictions, positives, groups) -> dict[str, dict[str, float]]:
    everyone = np.arange(len(predictions))
    table = {"all": recalls(predictions, positives, everyone)}
    for group in sorted(set(groups or [])):
        table[group] = recalls(predictions, positives,
                               np.array([q for q, g in enumerate(groups) if g == group]))
    return table


def closure(scores, predictions, positives) -> dict[str, float]:
    correct = [int(predictions[q, 0]) in positives[q] for q in range(len(predictions))]
    metrics = loop_closure_metrics(scores, correct, [bool(p) for p in positives])
    return {"AP": metrics["average_precision"],
            "R@100P": 100 * metrics["recall_at_100_precision"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ckpt", type=Path)
    parser.add_argument("testsets", type=Path, nargs="+")
    parser.add_argument("--k", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--methods", nargs="+", default=["backbone", "sift", "orb"])
    parser.add_argument("--geometry", default="homography")
    parser.add_argument("--options", default="{}",
                        help="JSON: {method: {option: value}}, e.g. "
                             '\'{"backbone": {"layer": "layer3"}}\'')
    parser.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--limit", type=int, default=None,
                        help="only the first N queries (a quick check, not a measurement)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    method_options = json.loads(args.options)

    module, hparams = load_model(args.ckpt)
    reader = UInt8Reader(tuple(hparams["image_size"]) if hparams.get("image_size") else None)
    report = {"checkpoint": str(args.ckpt), "cpu": cpu_model(), "threads": args.threads,
              "geometry": args.geometry, "sets": {}}
    for testset in args.testsets:
        dataset = RetrievalSet(testset, transform=None)
        if args.limit:  # the first N queries; the database is kept whole
            dataset.query_paths = dataset.query_paths[:args.limit]
            dataset.positives_per_query = dataset.positives_per_query[:args.limit]
        paths = [*dataset.database_paths, *dataset.query_paths]
        descriptors = extract_descriptors(module, ImageFolderDataset(paths, reader=reader),
                                          batch_size=64, device="cpu", precision=None,
                                          progress=False)
        database, queries = descriptors[:dataset.database_num], descriptors[dataset.database_num:]
        distances, predictions = search(database, queries, max(args.k))
        similarities = 1.0 - distances / 2.0
        positives = [set(np.asarray(p).tolist()) for p in dataset.positives_per_query]
        groups = query_groups(dataset.query_paths, "auto")
        name = "/".join(Path(testset).parts[-2:])
        entry = {"queries": dataset.queries_num, "database": dataset.database_num,
                 "before": summary(predictions, positives, groups),
                 "before_loop_closure": closure(similarities[:, 0], predictions, positives),
                 "methods": {}}
        print(f"\n{name}: {dataset.database_num} database images, {dataset.queries_num} "
              f"queries; before: {entry['before']}")
        for method_name in args.methods:
            method = build_method(method_name, model=module, **method_options.get(method_name, {}))
            start = time.perf_counter()
            database_features = method.extract(list(dataset.database_paths))
            database_seconds = time.perf_counter() - start
            results = {"database_features_s": database_seconds,
                       "keypoints_per_image": float(np.mean([len(f) for f in database_features]))}
            for k in args.k:
                reranker = Reranker(method, GeometricVerifier(geometry=args.geometry), top_k=k)
                cpu_start = time.process_time()
                reranked = reranker.rerank(dataset.query_paths, predictions, similarities,
                                           database_features)
                # CPU time too: on a shared machine wall time mostly measures the neighbours.
                row = {"ms_per_query": 1000 * reranked.seconds / dataset.queries_num,
                       "cpu_ms_per_query": 1000 * (time.process_time() - cpu_start)
                       / dataset.queries_num,
                       "load_average": os.getloadavg()[0]}
                # Both rules from the same inliers (in the global order: undo the permutation).
                inliers = np.full(predictions.shape, -1)
                rows = np.arange(len(predictions))[:, None]
                inliers[rows, reranked.order] = reranked.inliers
                for rule in ("inliers", "blend"):
                    ordered = predictions.copy()
                    for q in range(len(predictions)):
                        top = rerank_order(similarities[q, :k], inliers[q, :k], rule)
                        ordered[q, :k] = predictions[q, :k][top]
                    row[rule] = summary(ordered, positives, groups)
                row["inliers_loop_closure"] = closure(reranked.inliers[:, 0],
                                                      reranked.candidates, positives)
                results[f"K={k}"] = row
                print(f"  {method_name} K={k}: {row['ms_per_query']:.1f} ms/query "
                      f"({row['cpu_ms_per_query']:.1f} CPU ms, load {row['load_average']:.1f}); "
                      f"inliers {row['inliers']}; blend {row['blend']}")
            entry["methods"][method_name] = results
        report["sets"][name] = entry
    print("\n" + markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def markdown(report) -> str:
    lines = ["| set | method | K | ms/query (CPU ms) | rule | R@1 all | " + " | ".join(
        f"R@1 {g}" for g in ("day", "sunset", "night")) + " | R@5 all |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]

    def cells(table):
        return " | ".join(f"{table[g]['R@1']:.1f}" if g in table else "-"
                          for g in ("all", "day", "sunset", "night"))

    for name, entry in report["sets"].items():
        lines.append(f"| {name} | none (global) | - | - | - | {cells(entry['before'])} | "
                     f"{entry['before']['all']['R@5']:.1f} |")
        for method, results in entry["methods"].items():
            for key, row in results.items():
                if not key.startswith("K="):
                    continue
                for rule in ("inliers", "blend"):
                    lines.append(f"| {name} | {method} | {key[2:]} | {row['ms_per_query']:.0f} "
                                 f"({row['cpu_ms_per_query']:.0f}) | "
                                 f"{rule} | {cells(row[rule])} | {row[rule]['all']['R@5']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
