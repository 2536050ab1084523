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

``--configs fast`` compares exact search with the fastest settings at >= 99% R@1 (IVF with
more lists) side by side. ``--beyond N`` is the protocol beyond a million: N descriptors
(``--dtype float16`` halves the file), the exact neighbours by a chunked brute force over
the memmap, an ivfpq index (HNSW coarse quantizer) built from the file and saved, then, in
a fresh process that maps the index (IO_FLAG_MMAP) and the descriptors, queries/s, R@1
(with the top 20-100 re-ranked exactly, as `LocationIndex.search` does) and the peak RSS:

    python bench/search_bench.py --beyond 10000000 --dtype float16 --workdir /tmp

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
# Exact search beside the fastest settings that keep >= 99% of its R@1.
FAST_CONFIGS = [
    ("flat (exact)", {"kind": "flat"}, [{}]),
    ("ivf nlist=1024", {"kind": "ivf", "nlist": 1024}, [{"nprobe": 8}]),
    # k-means on 25 points per list rather than 40: a quarter of the training time.
    ("ivf nlist=4096", {"kind": "ivf", "nlist": 4096, "train_size": 102_400},
     [{"nprobe": 4}, {"nprobe": 8}, {"nprobe": 16}]),
]
CONFIG_SETS = {"default": CONFIGS, "fast": FAST_CONFIGS}
# Index settings of the peak-RSS runs (the default nlist, 4 sqrt(N), trains far longer).
RSS_OPTIONS = {"ivfpq": {"nlist": 1024, "m": 32}, "flat": {}}


def make_descriptors(path: Path, rows: int, dim: int, queries: int, seed: int = 0,
                     clusters: int = 2000, latent: int = 48, chunk: int = 100_000,
                     dtype: str = "float32"):
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

    data = open_memmap(path, mode="w+", dtype=dtype, shape=(rows, dim))
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


def exact_top1(database: np.ndarray, queries: np.ndarray, chunk: int = 262_144) -> np.ndarray:
    """Index of each query's nearest row of ``database`` (a memmap), by chunked brute force.

    Only one chunk of the file is resident at a time (released after use), so memory stays
    flat whatever the number of rows; the float16 file's values are compared exactly, as
    float32.
    """
    from vpr.eval.memmap import release_pages

    queries = np.ascontiguousarray(queries, np.float32)
    best = np.full(len(queries), np.inf, np.float32)
    best_index = np.zeros(len(queries), np.int64)
    for start in range(0, database.shape[0], chunk):
        block = np.asarray(database[start : start + chunk], np.float32)
        # |x - q|^2 = |x|^2 - 2 q.x + |q|^2; the last term does not change the argmin.
        distances = (block * block).sum(1)[None, :] - 2.0 * queries @ block.T
        nearest = distances.argmin(1)
        value = distances[np.arange(len(queries)), nearest]
        better = value < best
        best[better], best_index[better] = value[better], nearest[better] + start
        release_pages(database)
    return best_index


BEYOND_OPTIONS = {"kind": "ivfpq", "m": 32, "coarse": "hnsw"}
# nprobe, and the candidates re-ranked exactly from the memmap: reading those scattered
# rows (a page fault each, ~2.5 us) is most of a query's cost at 10 M.
BEYOND_SETTINGS = [{"nprobe": 8, "rerank": 100}, {"nprobe": 8, "rerank": 50},
                   {"nprobe": 4, "rerank": 50}, {"nprobe": 4, "rerank": 20}]


REPEATS = 5


def beyond_child(folder: str, queries_file: str, exact_file: str) -> None:
    """Run in a fresh process: map the saved index and descriptors, search, print JSON."""
    from vpr.eval.search import load_index

    queries = np.load(queries_file)
    exact = np.load(exact_file)
    database = np.load(Path(folder) / "descriptors.npy", mmap_mode="r")
    index = load_index(Path(folder) / "index.faiss", mmap=True)
    rows = []
    for setting in BEYOND_SETTINGS:
        set_search_params(index, nprobe=setting["nprobe"])
        factor = setting["rerank"] // 10
        # warm the lists
        search_index(index, queries[:50], 10, rerank_with=database, rerank_factor=factor)
        # One pass of 1,000 queries lasts about a second: the median of REPEATS passes.
        passes = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            _, indices = search_index(index, queries, 10, rerank_with=database,
                                      rerank_factor=factor)
            passes.append(time.perf_counter() - start)
        seconds = float(np.median(passes))
        rows.append({**setting, "qps": len(queries) / seconds,
                     "r1": recall_vs_exact(indices, exact, 1),
                     "r10": recall_vs_exact(indices, exact, 10)})
    print(json.dumps({"rows": rows, "peak_rss_mib": _status_mib("VmHWM")}))


def beyond(args: argparse.Namespace) -> str:
    """The beyond-a-million protocol (see the module docstring); returns the report."""
    folder = Path(tempfile.mkdtemp(dir=args.workdir, prefix="vpr-beyond-"))
    if args.keep:
        print(f"Keeping the descriptors and index in {folder} (search again with "
              f"--search_again {folder})", flush=True)
    try:
        path = folder / "descriptors.npy"
        start = time.perf_counter()
        database, queries = make_descriptors(path, args.beyond, args.dim, args.queries,
                                             dtype=args.dtype)
        file_mib = path.stat().st_size / 2**20
        print(f"Made {args.beyond:,} x {args.dim} {args.dtype} descriptors ({file_mib:.0f} MiB)"
              f" in {time.perf_counter() - start:.0f} s", flush=True)
        start = time.perf_counter()
        exact = exact_top1(database, queries)
        exact_seconds = time.perf_counter() - start
        print(f"Exact neighbours by brute force over the memmap: {exact_seconds:.0f} s "
              f"({len(queries) / exact_seconds:.1f} queries/s)", flush=True)
        nlist = args.nlist or int(round(4 * np.sqrt(args.beyond) / 1024) * 1024)
        start = time.perf_counter()
        index = build_index(database, nlist=nlist, **BEYOND_OPTIONS)
        build_seconds = time.perf_counter() - start
        build_peak = _status_mib("VmHWM")
        save_index(index, folder / "index.faiss")
        index_mib = (folder / "index.faiss").stat().st_size / 2**20
        del index, database
        print(f"Built ivfpq nlist={nlist} m=32 (HNSW coarse) in {build_seconds:.0f} s, "
              f"{index_mib:.0f} MiB", flush=True)
        np.save(folder / "queries.npy", queries)
        np.save(folder / "exact.npy", exact)
        output = subprocess.run(
            [sys.executable, __file__, "--beyond_child", str(folder)],
            check=True, capture_output=True, text=True).stdout
        figures = json.loads(output.strip().splitlines()[-1])
        (folder / "build.json").write_text(json.dumps(
            {"rows": args.beyond, "dim": args.dim, "dtype": args.dtype, "queries": args.queries,
             "file_mib": file_mib, "exact_seconds": exact_seconds, "nlist": nlist,
             "build_seconds": build_seconds, "build_peak": build_peak,
             "index_mib": index_mib}))
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    return beyond_report(figures, args.beyond, args.dim, args.dtype, file_mib, args.queries,
                         exact_seconds, nlist, build_seconds, build_peak, index_mib)


def rebuild_child(folder: str) -> None:
    """Run in a fresh process: build the kept --beyond index again from its file; print JSON."""
    built = json.loads((Path(folder) / "build.json").read_text())
    start = time.perf_counter()
    index = build_index(Path(folder) / "descriptors.npy", nlist=built["nlist"],
                        **BEYOND_OPTIONS)
    print(json.dumps({"seconds": time.perf_counter() - start, "ntotal": int(index.ntotal),
                      "peak_rss_mib": _status_mib("VmHWM")}))


def rebuild_rss(folder: Path) -> str:
    """The peak RSS of building a kept --beyond index from its existing file."""
    output = subprocess.run(
        [sys.executable, __file__, "--rebuild_child", str(folder)],
        check=True, capture_output=True, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    built = json.loads((folder / "build.json").read_text())
    return (f"Rebuilt ivfpq nlist={built['nlist']} m=32 (HNSW coarse) over "
            f"{figures['ntotal']:,} {built['dtype']} descriptors from the existing "
            f"{built['file_mib']:,.0f} MiB file in a fresh process: {figures['seconds']:.0f} s, "
            f"peak RSS {figures['peak_rss_mib']:,.0f} MiB; {_machine()}.\n")


def search_again(folder: Path) -> str:
    """Repeats the search step of a kept --beyond run (a quiet moment, other settings)."""
    built = json.loads((folder / "build.json").read_text())
    output = subprocess.run(
        [sys.executable, __file__, "--beyond_child", str(folder)],
        check=True, capture_output=True, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    return beyond_report(figures, built["rows"], built["dim"], built["dtype"],
                         built["file_mib"], built["queries"], built["exact_seconds"],
                         built["nlist"], built["build_seconds"], built["build_peak"],
                         built["index_mib"])


def beyond_report(figures: dict, rows: int, dim: int, dtype: str, file_mib: float,
                  queries: int, exact_seconds: float, nlist: int, build_seconds: float,
                  build_peak: float, index_mib: float) -> str:
    """The Markdown report of a --beyond run."""
    lines = [f"{rows:,} synthetic clustered {dim}-D unit descriptors stored as "
             f"{dtype} ({file_mib:,.0f} MiB memmap), {queries:,} queries, k=10; "
             f"{_machine()}.", "",
             f"- exact search (chunked brute force over the memmap, the reference): "
             f"{queries / exact_seconds:.1f} queries/s",
             f"- ivfpq nlist={nlist} m=32, HNSW coarse quantizer: built in {build_seconds:.0f} s "
             f"(peak RSS of this process so far {build_peak:,.0f} MiB), index file "
             f"{index_mib:,.0f} MiB",
             f"- search in a fresh process (index lists and descriptors memory-mapped, top N "
             f"re-ranked exactly): peak RSS {figures['peak_rss_mib']:,.0f} MiB", "",
             "| setting | R@1 vs exact | R@10 | queries/s (median of 5 passes) | x exact |",
             "|---|---:|---:|---:|---:|"]
    for row in figures["rows"]:
        lines.append(f"| nprobe={row['nprobe']}, re-rank top {row.get('rerank', 100)} | "
                     f"{row['r1']:.1f} | "
                     f"{row['r10']:.1f} | {row['qps']:,.0f} | "
                     f"{row['qps'] * exact_seconds / queries:,.0f} |")
    return "\n".join(lines) + "\n"


def _machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
            f"{platform.python_implementation()} {platform.python_version()}")


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
    parser.add_argument("--configs", choices=sorted(CONFIG_SETS), default="default",
                        help="default: every index kind; fast: exact vs the fastest IVF "
                             "settings")
    parser.add_argument("--beyond", type=int, default=None, metavar="N",
                        help="run the beyond-a-million protocol at N descriptors instead")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                        help="storage of the --beyond descriptor file (default: float32)")
    parser.add_argument("--nlist", type=int, default=None,
                        help="--beyond: inverted lists (default: 4 sqrt(N), rounded to 1024s)")
    parser.add_argument("--keep", action="store_true",
                        help="--beyond: keep the descriptor file and index (for --search_again)")
    parser.add_argument("--search_again", type=Path, default=None, metavar="FOLDER",
                        help="repeat only the search step of a --beyond --keep run")
    parser.add_argument("--rebuild_rss", type=Path, default=None, metavar="FOLDER",
                        help="build the index of a --beyond --keep run again from its file, "
                             "in a fresh process, and report its peak RSS")
    parser.add_argument("--rebuild_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--beyond_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.kind)
        return
    if args.rebuild_child:
        rebuild_child(args.rebuild_child)
        return
    if args.rebuild_rss:
        report = rebuild_rss(args.rebuild_rss)
        print(report)
        if args.table:
            args.table.write_text(report)
        return
    if args.beyond_child:
        folder = Path(args.beyond_child)
        beyond_child(str(folder), str(folder / "queries.npy"), str(folder / "exact.npy"))
        return
    if args.beyond or args.search_again:
        table = search_again(args.search_again) if args.search_again else beyond(args)
        print("\n" + table)
        if args.table:
            args.table.write_text(table)
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
        for label, options, settings in [] if args.rss_only else CONFIG_SETS[args.configs]:
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
        # The fast comparison is about speed; the RSS runs belong to the full one.
        for kind in ("ivfpq", "flat") if args.configs == "default" else ():
            figures = measure_rss(path, kind)
            line = (f"| {kind} | {figures['peak_rss_mib']:.0f} | "
                    f"{figures['rss_after_imports_mib']:.0f} | {file_mib:.0f} | "
                    f"{figures['seconds']:.1f} |")
            rss_lines.append(line)
            print(line, flush=True)
        del database

    machine = _machine()
    header = (f"{args.rows:,} synthetic clustered {args.dim}-D unit descriptors, "
              f"{args.queries:,} queries, k=10; {machine}.")
    table = "\n".join([header, "", *lines, *(["", *rss_lines] if len(rss_lines) > 2 else [])])
    table += "\n"
    print("\n" + table)
    if args.table:
        args.table.write_text(table)


if __name__ == "__main__":
    main()
