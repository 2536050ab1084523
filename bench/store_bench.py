"""The location store at scale: open, locate and grow an index of --rows made-up images.

Builds an index of --rows synthetic rows (random unit --dim descriptors, coordinates
scattered over a city) directly through the store API (`LocationIndex.create` +
`add_rows`, no image is read), then measures, side by side with the format-1 index of
earlier vpr (meta.json read whole, descriptors.npy, a flat index.faiss), opened by the code
of --before_src (a checkout of the earlier version, e.g. the main branch's src/):

- ``LocationIndex.load`` in a fresh process (wall time of the call; imports excluded);
- one ``locate`` of one query descriptor (the search and the vote; the model's forward
  pass, the same for both, is left out), without and with a 500 m geographic prior;
- ``index add`` of --add_rows images: bytes written by the process (``/proc/self/io``
  write_bytes) and the index's files before and after.

    python bench/store_bench.py --rows 1000000 --dim 256 --workdir /tmp/store_bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
CHUNK = 100_000
# Made-up coordinates: a 20 x 20 km city around this point.
CENTRE = (48.8566, 2.3522)

# Runs in a fresh process with the src/ of one version first on sys.path: opens the index,
# then locates one query descriptor, printing JSON timings.
OPEN_AND_LOCATE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from vpr.locate import LocationIndex
from vpr.locate.predict import _result
started = time.perf_counter()
index = LocationIndex.load(sys.argv[2])
load_s = time.perf_counter() - started
query = np.load(sys.argv[3])
started = time.perf_counter()
similarities, items = index.search(query, 5)
result = _result("query", index, similarities[0], items[0], 25.0)
locate_s = time.perf_counter() - started
started = time.perf_counter()
similarities, items = index.search(query, 5)
_result("query", index, similarities[0], items[0], 25.0)
again_s = time.perf_counter() - started
out = {"load_s": load_s, "locate_s": locate_s, "again_s": again_s, "images": len(index),
       "top": result.matches[0].path}
if len(sys.argv) > 4:
    from vpr.locate.predict import GeoPrior, locate_descriptors
    lat, lon = map(float, sys.argv[4].split(","))
    started = time.perf_counter()
    near = locate_descriptors(query, ["query"], index, 5, 25.0, GeoPrior(lat, lon, 500.0))
    out["locate_near_s"] = time.perf_counter() - started
    out["near_candidates"] = len(index.ids_near(lat, lon, 500.0))
print(json.dumps(out))
"""

# Adds rows to an index with the code of one version, the model and image reading replaced
# by made-up rows; prints the bytes the process wrote.
ADD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import numpy as np
import vpr.locate.index as module
from vpr.locate import LocationIndex
count, dim, seed = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(seed)
new = rng.normal(size=(count, dim)).astype(np.float32)
new /= np.linalg.norm(new, axis=1, keepdims=True)
paths = [Path(f"/made-up/added/{seed}_{i}@1@2@31@T@48.8@2.3@.jpg") for i in range(count)]
def records(paths):
    n = len(paths)
    return {"paths": [str(p) for p in paths], "utm_east": [1.0] * n, "utm_north": [2.0] * n,
            "utm_zone_number": [31] * n, "utm_zone_letter": ["U"] * n,
            "latitude": [48.85] * n, "longitude": [2.35] * n}
def io():
    return int(dict(line.split(": ") for line in open("/proc/self/io").read().splitlines()
                    )["write_bytes"])
index = LocationIndex.load(sys.argv[2])
before = io()
started = time.perf_counter()
if hasattr(index, "add_rows"):
    added = index.add_rows(paths, lambda paths: (records(paths), new))
else:  # the earlier code: describe and read nothing, write what it writes
    def extract(model, paths, meta, out_path, *rest):
        if out_path is not None:
            np.save(out_path, new)
            return np.load(out_path, mmap_mode="r")
        return new
    module._extract = extract
    module._image_paths = lambda images: list(images)
    module.image_records = records
    LocationIndex.load_model = lambda self, ckpt_path=None: None
    added = index.add(paths)
seconds = time.perf_counter() - started
print(json.dumps({"added": added, "seconds": seconds, "write_bytes": io() - before}))
"""


def unit_rows(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    rows = rng.normal(size=(count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def made_up_records(start: int, count: int, rng: np.random.Generator) -> dict[str, list]:
    """Rows scattered over a 20 km square around CENTRE (lat/lon and a UTM-like east/north)."""
    north = rng.uniform(-10_000, 10_000, count)
    east = rng.uniform(-10_000, 10_000, count)
    latitude = CENTRE[0] + north / 111_320.0
    longitude = CENTRE[1] + east / (111_320.0 * np.cos(np.radians(CENTRE[0])))
    return {"paths": [f"/made-up/city/{start + i:08d}.jpg" for i in range(count)],
            "utm_east": (452_000 + east).tolist(), "utm_north": (5_411_000 + north).tolist(),
            "utm_zone_number": [31] * count, "utm_zone_letter": ["U"] * count,
            "latitude": latitude.tolist(), "longitude": longitude.tolist()}


def model_identity(dim: int) -> dict:
    return {"checkpoint": "/made-up/model.ckpt", "sha256": "0" * 64, "hparams": {},
            "image_size": [224, 224], "descriptors_dim": dim}


def build_store(folder: Path, rows: int, dim: int, seed: int) -> float:
    """The index of format 2, through the store API; returns seconds."""
    sys.path.insert(0, str(SRC))
    from vpr.locate import LocationIndex

    started = time.perf_counter()
    index = LocationIndex.create(folder, model_identity(dim), dim)
    rng = np.random.default_rng(seed)
    for start in range(0, rows, CHUNK):
        count = min(CHUNK, rows - start)
        records = made_up_records(start, count, rng)
        descriptors = unit_rows(rng, count, dim)
        paths = [Path(path) for path in records["paths"]]
        index.add_rows(paths, lambda _paths, r=records, d=descriptors: (r, d))
    seconds = time.perf_counter() - started
    index.close()
    return seconds


def build_format_1(folder: Path, store: Path, dim: int) -> float:
    """The same rows as an index of format 1 (what earlier vpr wrote); returns seconds."""
    import faiss

    from vpr.locate import LocationIndex

    started = time.perf_counter()
    index = LocationIndex.load(store)
    images = {"paths": list(index.paths)}
    for name in ("utm_east", "utm_north", "utm_zone_number", "utm_zone_letter", "latitude",
                 "longitude"):
        images[name] = list(index.store.column_values(name))
    data = folder / "v-1"
    data.mkdir(parents=True)
    np.save(data / "descriptors.npy", np.asarray(index.descriptors))
    flat = faiss.IndexFlatL2(dim)
    for start in range(0, len(index), CHUNK):
        flat.add(np.ascontiguousarray(index.descriptors[start : start + CHUNK]))
    faiss.write_index(flat, str(data / "index.faiss"))
    del flat
    meta = {"format": "vpr-location-index", "format_version": 1, "vpr_version": "0.1.0",
            "created": "2026-01-01T00:00:00+00:00", "updated": "2026-01-01T00:00:00+00:00",
            "model": model_identity(dim),
            "index": {"type": "flat", "options": {}, "metric": "l2"}, "sources": [],
            "images": images}
    (data / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    (folder / "CURRENT").write_text("v-1\n")
    return time.perf_counter() - started


def files(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_size
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run_json(code: str, *argv: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                            text=True, timeout=3600,
                            env={**os.environ, "PYTHONPATH": ""})
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="images (1,000,000)")
    parser.add_argument("--dim", type=int, default=256, help="descriptor dimension (256)")
    parser.add_argument("--add_rows", type=int, default=1000, help="images added (1000)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vpr_store_bench"))
    parser.add_argument("--before_src", type=Path, default=Path("/work/main/src"),
                        help="src/ of the version to compare with (format 1); '' to skip")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    store, old = args.workdir / "store_index", args.workdir / "format1_index"
    query = args.workdir / "query.npy"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    build_s = build_store(store, args.rows, args.dim, args.seed)
    print(f"built the store of {args.rows:,} rows x {args.dim}-D in {build_s:.1f} s")
    np.save(query, unit_rows(np.random.default_rng(args.seed + 1), 1, args.dim))
    versions = [("store (this branch)", SRC, store)]
    if str(args.before_src) and (args.before_src / "vpr").is_dir():
        old_s = build_format_1(old, store, args.dim)
        print(f"wrote the same rows as format 1 in {old_s:.1f} s")
        versions.append((f"format 1 ({args.before_src})", args.before_src, old))
    print("\n| index | load s | first locate s | load + first locate s | next locate s | "
          "locate --near 500 m s | images within 500 m |")
    print("|---|---|---|---|---|---|---|")
    for name, src, folder in versions:
        near = f"{CENTRE[0]},{CENTRE[1]}" if src == SRC else None
        timing = run_json(OPEN_AND_LOCATE, str(src), str(folder), str(query),
                          *([near] if near else []))
        print(f"| {name} | {timing['load_s']:.3f} | {timing['locate_s']:.3f} | "
              f"{timing['load_s'] + timing['locate_s']:.3f} | {timing['again_s']:.3f} | "
              f"{timing.get('locate_near_s', float('nan')):.3f} | "
              f"{timing.get('near_candidates', '-')} |", flush=True)
    print(f"\n`index add` of {args.add_rows} images to {args.rows:,}:")
    print("| index | add s | bytes written | files before | files after |")
    print("|---|---|---|---|---|")
    for name, src, folder in versions:
        before = files(folder)
        added = run_json(ADD, str(src), str(folder), str(args.add_rows), str(args.dim), "7")
        after = files(folder)
        describe = lambda sizes: ", ".join(f"{path} {mib(size)}" for path, size in  # noqa: E731
                                           sizes.items() if not path.endswith(".lock"))
        print(f"| {name} | {added['seconds']:.2f} | {mib(added['write_bytes'])} | "
              f"{describe(before)} | {describe(after)} |", flush=True)


if __name__ == "__main__":
    main()
