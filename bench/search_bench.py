"""Benchmark of `vpr.eval.search` indexes on synthetic descriptors: recall, speed, memory.

Makes N clustered, L2-normalised descriptors (written to a memory-mapped .npy file, as
`vpr index build` does), finds the exact neighbours of Q queries by flat search, then for
each index kind reports:

- R@1: the share of queries whose exact nearest neighbour is the index's first result;
- R@10: the share whose exact nearest neighbour is among its first 10 results;
  (ivfpq is also shown with its top 100 re-ranked by exact distances read from the memmap,
  as `LocationIndex.search` does);
- queries/s of one batch of Q queries (all CPU threads), build time and index file size;

and, in fresh processes, the peak RSS while indexing the memory-mapped file (flat and
ivfpq), to compare with the file's size.

    python bench/search_bench.py --rows 1000000 --dim 256 --queries 1000

Prints a Markdown table (and writes it to --table when given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from vpr.eval.search import build_index, save_index, search_index, set_search_params

# (label, build options, search settings to try): one build per entry, several searches.
CONFIGS = [
    ("flat (exact)", {"kind": "flat"}, [{}]),
    ("ivf nlist=1024", {"kind": "ivf", "nlist": 1024}, [{"nprobe": 8}, {"nprobe": 32}]),
    ("hnsw M=16", {"kind": "hnsw", "m": 16, "efConstruction": 40},
     [{"efSearch": 32}, {"efSearch": 128}]),
    ("ivfpq nlist=1024 m=32", {"kind": "ivfpq", "nlist": 1024, "m": 32},
     [{"nprobe": 8}, {"nprobe": 32}, {"nprobe": 32, "rerank": 100}]),
]
# Index settings of the peak-RSS runs (the default nlist, 4 sqrt(N), trains far longer).
RSS_OPTIONS = {"ivfpq": {"nlist": 1024, "m": 32}, "flat": {}}


def make_descriptors(path: Path, rows: int, dim: int, queries: int, seed: int = 0,
                     clusters: int = 2000, latent: int = 48, chunk: int = 100_000):
    """Writes (rows, dim) clustered unit vectors to ``path``; returns (memmap, queries).

    Points are cluster centres in a ``latent``-D space plus spread, mapped to ``dim`` D by
    a random linear map plus small noise: like real descriptors, most variance lies in few
    directions, and neighbours are not trivially far apart.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, latent)).astype(np.float32)
    projection = (rng.normal(size=(latent, dim)) / np.sqrt(latent)).astype(np.float32)

    def sample(count: int) -> np.ndarray:
        points = centres[rng.integers(0, clusters, count)]
        points = points + 0.35 * rng.normal(size=(count, latent)).astype(np.float32)
        vectors = points @ projection + 0.05 * rng.normal(size=(count, dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    data = open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    for start in range(0, rows, chunk):
        data[start : start + chunk] = sample(min(chunk, rows - start))
    data.flush()
    del data
    return np.load(path, mmap_mode="r"), sample(queries)


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(path: str, kind: str) -> None:
    """Run in a fresh process: index ``path`` and print RSS figures as JSON."""
    before = _status_mib("VmRSS")
    start = time.perf_counter()
    index = build_index(path, kind=kind, **RSS_OPTIONS[kind])
    seconds = time.perf_counter() - start
    # VmHWM is the peak RSS of this process image; ru_maxrss would also count the parent's
    # memory at fork time, which Linux carries across exec.
    peak = _status_mib("VmHWM")
    print(json.dumps({"kind": kind, "rss_after_imports_mib": before, "peak_rss_mib": peak,
                      "seconds": seconds, "ntotal": int(index.ntotal)}))


def measure_rss(path: Path, kind: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--rss_child", str(path), "--kind", kind],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def recall_vs_exact(indices: np.ndarray, exact_top1: np.ndarray, n: int) -> float:
    return float((indices[:, :n] == exact_top1[:, None]).any(axis=1).mean() * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the descriptor file goes (default: a temporary folder)")
    parser.add_argument("--table", type=Path, default=None, help="also write the table here")
    parser.add_argument("--rss_only", action="store_true",
                        help="only measure the peak RSS of indexing the file")
    parser.add_argument("--rss_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="flat", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.kind)
        return

    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        path = Path(folder) / "descriptors.npy"
        start = time.perf_counter()
        database, queries = make_descriptors(path, args.rows, args.dim, args.queries)
        file_mib = path.stat().st_size / 2**20
        print(f"Made {args.rows} x {args.dim} descriptors ({file_mib:.0f} MiB) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)

        lines = ["| index | search setting | build s | index MiB | R@1 | R@10 | queries/s |",
                 "|---|---|---:|---:|---:|---:|---:|"]
        exact_top1 = None
        for label, options, settings in [] if args.rss_only else CONFIGS:
            start = time.perf_counter()
            index = build_index(database, **options)
            build_seconds = time.perf_counter() - start
            save_index(index, Path(folder) / "index.faiss")
            index_mib = (Path(folder) / "index.faiss").stat().st_size / 2**20
            for setting in settings:
                setting = dict(setting)
                # "rerank": re-rank this many candidates with the exact (memmapped) vectors.
                rerank = setting.pop("rerank", None)
                set_search_params(index, **setting)
                start = time.perf_counter()
                _, indices = search_index(index, queries, 10,
                                          rerank_with=database if rerank else None,
                                          rerank_factor=(rerank or 10) // 10)
                if rerank:
                    setting["exact re-rank of top"] = rerank
                qps = len(queries) / (time.perf_counter() - start)
                if exact_top1 is None:  # the first config is the exact search
                    exact_top1 = indices[:, 0].copy()
                shown = ", ".join(f"{k}={v}" for k, v in setting.items()) or "-"
                line = (f"| {label} | {shown} | {build_seconds:.1f} | {index_mib:.0f} | "
                        f"{recall_vs_exact(indices, exact_top1, 1):.1f} | "
                        f"{recall_vs_exact(indices, exact_top1, 10):.1f} | {qps:,.0f} |")
                lines.append(line)
                print(line, flush=True)
            del index

        rss_lines = ["| indexing the memmapped file | peak RSS MiB | RSS after imports MiB | "
                     "descriptor file MiB | build s |", "|---|---:|---:|---:|---:|"]
        for kind in ("ivfpq", "flat"):
            figures = measure_rss(path, kind)
            line = (f"| {kind} | {figures['peak_rss_mib']:.0f} | "
                    f"{figures['rss_after_imports_mib']:.0f} | {file_mib:.0f} | "
                    f"{figures['seconds']:.1f} |")
            rss_lines.append(line)
            print(line, flush=True)
        del database

    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
               f"{platform.python_implementation()} {platform.python_version()}")
    header = (f"{args.rows:,} synthetic clustered {args.dim}-D unit descriptors, "
              f"{args.queries:,} queries, k=10; {machine}.")
    table = "\n".join([header, "", *lines, "", *rss_lines]) + "\n"
    print("\n" + table)
    if args.table:
        args.table.write_text(table)


if __name__ == "__main__":
    main()
