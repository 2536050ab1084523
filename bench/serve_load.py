"""Load test of `vpr serve`: a bounded number of POST /locate requests on loopback.

Starts `vpr serve` in a subprocess (on 127.0.0.1, a free port) over a small synthetic index,
sends --requests uploads of query photos from --concurrency threads (one HTTP client
each), stops by itself, and reports requests/s and the latency percentiles.

Without --index, the index is made in --workdir (reused by later runs): the ``tiny``
synthetic city (`vpr synth --preset tiny`) at --image_size, its database images (every
database/ folder and the training places) described by --ckpt or, by default, an untrained
ResNet-18 + ConvAP (the same speed as a trained one); the query photos are the city's
queries. Only loopback addresses are ever used.

    python bench/serve_load.py --requests 200 --concurrency 4

With --big_uploads, every request sends the same maximum-size photo instead: a 16-bit RGBA
PNG of about --big_megapixels (just under the server's pixel cap), and the server's peak
resident memory (VmHWM of /proc/PID/status) is reported before and after the load:

    python bench/serve_load.py --big_uploads --model_size 224x224 --requests 8 --concurrency 8

With --compare_batching, the same photos are sent at each of --concurrencies by servers
started one after the other: "before" (``--max_batch 1``: each request alone under the
model's lock, the behaviour of vpr before batching), "batched" (``--max_batch 16
--batch_window_ms 10``) and, with --workers N > 1, "batched, N workers":

    python bench/serve_load.py --compare_batching --model_size 224x224 --requests 64
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

# Runs the real `vpr serve` command line (whether or not it is registered in `vpr`).
SERVE_CODE = ("import argparse, sys; from vpr.cli import serve; "
              "parser = argparse.ArgumentParser(prog='vpr'); "
              "serve.add_parser(parser.add_subparsers()); "
              "args = parser.parse_args(sys.argv[1:]); sys.exit(args.func(args))")


def parse_size(text: str) -> tuple[int, int]:
    """``"256x192"`` -> (256, 192): width, height."""
    width, _, height = text.lower().partition("x")
    return int(width), int(height or width)


def save_untrained_checkpoint(path: Path, seed: int = 0,
                              image_size: tuple[int, int] | None = None) -> Path:
    """An untrained ResNet-18 + ConvAP checkpoint (no download: no pretrained weights).

    ``image_size`` is (height, width) of the model's input; None: native-size images.
    """
    import lightning

    from vpr.training.module import VPRModule

    lightning.seed_everything(seed, verbose=False)
    module = VPRModule(pretrained="none", image_size=image_size)
    trainer = lightning.Trainer(max_epochs=0, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path


def prepare_index(workdir: Path, image_size: tuple[int, int], ckpt: Path | None = None,
                  seed: int = 0, model_size: tuple[int, int] | None = None
                  ) -> tuple[Path, list[Path]]:
    """The synthetic city, a checkpoint and its index in ``workdir`` (made once, then reused).

    Returns:
        ``(index folder, query photos)``.
    """
    from vpr.data.images import list_images
    from vpr.locate import LocationIndex
    from vpr.locate.index import sha256_of
    from vpr.synthetic import generate_city

    city = workdir / f"city_{image_size[0]}x{image_size[1]}"
    print(f"Synthetic city in {city} (made once, about a minute)...", flush=True)
    generate_city(city, preset="tiny", seed=seed, image_size=image_size, progress=False)
    if ckpt is None:
        suffix = f"_{model_size[0]}x{model_size[1]}" if model_size else ""
        ckpt = workdir / f"untrained{suffix}.ckpt"
        if not ckpt.is_file():
            save_untrained_checkpoint(ckpt, seed, model_size)
    images = list_images(city)
    database = [path for path in images if "queries" not in path.parts]
    queries = [path for path in images if "queries" in path.parts]
    index_path = workdir / f"index_{city.name}_{ckpt.stem}"
    try:
        index = LocationIndex.load(index_path)
        fresh = index.meta["model"]["sha256"] == sha256_of(ckpt) and len(index) == len(database)
    except (ValueError, FileNotFoundError):
        fresh = False
    if not fresh:
        print(f"Indexing {len(database)} images with {ckpt}...", flush=True)
        LocationIndex.build(index_path, ckpt, database, device="cpu", overwrite=True)
    return index_path, queries


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_16bit_rgba(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG (Pillow cannot write one): regular gradients, stored with PNG's
    "Sub" filter so that they compress to a few MB while decoding to the full size."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (len(payload).to_bytes(4, "big") + kind + payload
                + zlib.crc32(kind + payload).to_bytes(4, "big"))

    columns = np.arange(width, dtype=np.uint32)
    compressor = zlib.compressobj(6)
    parts = []
    for row in range(height):
        pixels = np.empty((width, 4), dtype=">u2")
        pixels[:, 0] = (columns * 8) % 65536
        pixels[:, 1] = (row * 8) % 65536
        pixels[:, 2] = ((columns + row) * 8) % 65536
        pixels[:, 3] = 65535
        raw = np.frombuffer(pixels.tobytes(), dtype=np.uint8)
        filtered = raw.copy()
        filtered[8:] = raw[8:] - raw[:-8]  # Sub: each byte minus the one a pixel earlier
        parts.append(compressor.compress(b"\x01" + filtered.tobytes()))
    parts.append(compressor.flush())
    header = (width.to_bytes(4, "big") + height.to_bytes(4, "big")
              + bytes([16, 6, 0, 0, 0]))  # depth 16, colour type 6 (RGBA)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
            + chunk(b"IEND", b""))


def peak_rss_mib(pid: int) -> float:
    """The peak resident memory of a process so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(index: Path, port: int, top_k: int, timeout_s: float = 180.0,
                 extra: list[str] | None = None) -> subprocess.Popen:
    """`vpr serve` on 127.0.0.1:``port``, once /health answers."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_CODE, "serve", "--index", str(index), "--host",
         "127.0.0.1", "--port", str(port), "--top_k", str(top_k), "--accelerator", "cpu",
         "--log_level", "warning", *(extra or [])])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vpr serve exited with code {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    process.terminate()
    raise RuntimeError(f"vpr serve did not answer within {timeout_s:.0f} s")


def run_load(url: str, photos: list[tuple[str, bytes]], requests: int, concurrency: int,
             max_seconds: float) -> tuple[list[float], list[int], float]:
    """Sends ``requests`` uploads from ``concurrency`` threads (stops early at max_seconds).

    Returns:
        ``(latencies in seconds, status codes, wall seconds)``.
    """
    local = threading.local()
    counter = iter(range(requests))
    lock = threading.Lock()
    deadline = time.monotonic() + max_seconds
    latencies: list[float] = []
    statuses: list[int] = []

    def worker() -> None:
        local.client = httpx.Client(base_url=url, timeout=120)
        with local.client:
            while time.monotonic() < deadline:
                with lock:
                    number = next(counter, None)
                if number is None:
                    return
                name, content = photos[number % len(photos)]
                start = time.perf_counter()
                try:
                    status = local.client.post(
                        "/locate", files={"file": (name, content, "image/jpeg")}).status_code
                except httpx.HTTPError:
                    status = 0
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    statuses.append(status)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return latencies, statuses, time.perf_counter() - start


def machine() -> str:
    import torch
    from hostinfo import cpu_model

    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"load average {load:.1f} at the start")


def compare_batching(index: Path, photos: list[tuple[str, bytes]],
                     args: argparse.Namespace) -> None:
    """requests/s of servers with and without batching, at each concurrency, one table."""
    configs = [("before: --max_batch 1", ["--max_batch", "1"]),
               ("batched: --max_batch 16 --batch_window_ms 10",
                ["--max_batch", "16", "--batch_window_ms", "10"])]
    if args.workers > 1:
        configs.append((f"batched, --workers {args.workers}",
                        ["--max_batch", "16", "--batch_window_ms", "10", "--workers",
                         str(args.workers)]))
    rows = []
    for name, extra in configs:
        port = free_loopback_port()
        server = start_server(index, port, args.top_k, extra=extra + args.serve_args.split())
        url = f"http://127.0.0.1:{port}"
        try:
            run_load(url, photos, args.warmup, 1, args.max_seconds)
            for concurrency in args.concurrencies:
                latencies, statuses, wall = run_load(url, photos, args.requests, concurrency,
                                                     args.max_seconds)
                milliseconds = np.array(latencies) * 1000
                ok = sum(status == 200 for status in statuses)
                rows.append(f"| {name} | {concurrency} | {ok}/{len(statuses)} | "
                            f"{len(statuses) / wall:.1f} | "
                            f"{np.percentile(milliseconds, 50):.0f} | "
                            f"{np.percentile(milliseconds, 90):.0f} |")
                print(rows[-1], flush=True)
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(30)
    print("\n| server | concurrency | ok | requests/s | p50 ms | p90 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, default=None,
                        help="an existing index (default: the synthetic one in --workdir)")
    parser.add_argument("--photos", type=Path, nargs="*", default=None,
                        help="query photos to send (default: the synthetic city's queries)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "vpr-serve-bench",
                        help="where the synthetic city and index are kept between runs")
    parser.add_argument("--image_size", type=parse_size, default=(256, 192), metavar="WxH",
                        help="synthetic image size (default: 256x192)")
    parser.add_argument("--ckpt", type=Path, default=None,
                        help="checkpoint for the synthetic index (default: untrained)")
    parser.add_argument("--requests", type=int, default=200, help="requests in all (200)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (4)")
    parser.add_argument("--warmup", type=int, default=4, help="requests before timing (4)")
    parser.add_argument("--top_k", type=int, default=5, help="matches per photo (5)")
    parser.add_argument("--max_seconds", type=float, default=600.0,
                        help="stop sending after this long, whatever the count (600)")
    parser.add_argument("--big_uploads", action="store_true",
                        help="send one maximum-size 16-bit RGBA PNG in every request and "
                             "report the server's peak memory")
    parser.add_argument("--big_megapixels", type=float, default=39.9,
                        help="--big_uploads: the PNG's size, in megapixels (default: 39.9, "
                             "under the default --max_pixels of 40 M)")
    parser.add_argument("--model_size", type=parse_size, default=None, metavar="WxH",
                        help="input size of the untrained model (default: native-size "
                             "images; give one for --big_uploads, as vpr trains models)")
    parser.add_argument("--serve_args", default="",
                        help="more `vpr serve` options, e.g. '--max_decodes 4'")
    parser.add_argument("--compare_batching", action="store_true",
                        help="requests/s before and after batching, at each --concurrencies")
    parser.add_argument("--concurrencies", type=int, nargs="+", default=[1, 4, 16],
                        help="--compare_batching: client threads of each run (1 4 16)")
    parser.add_argument("--workers", type=int, default=1,
                        help="--compare_batching: also run batched with this many server "
                             "processes, when > 1")
    args = parser.parse_args()

    if args.index is None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        model_size = args.model_size[::-1] if args.model_size else None  # (height, width)
        index, queries = prepare_index(args.workdir, args.image_size, args.ckpt,
                                       model_size=model_size)
    else:
        index, queries = args.index, []
    paths = args.photos or queries
    if not paths and not args.big_uploads:
        parser.error("no photos to send: pass --photos with --index")
    photos = [(path.name, path.read_bytes()) for path in paths]
    if args.big_uploads:
        width = int((args.big_megapixels * 1e6 * 4 / 3) ** 0.5)
        height = int(args.big_megapixels * 1e6 // width)
        big = png_16bit_rgba(width, height)
        print(f"Upload: {width} x {height} 16-bit RGBA PNG ({width * height / 1e6:.1f} MP, "
              f"{len(big) / 2**20:.1f} MiB)", flush=True)
        warmup_photos, photos = photos[:1] or [("big.png", big)], [("big.png", big)]
    else:
        warmup_photos = photos
    from vpr.locate import LocationIndex

    indexed = LocationIndex.load(index)
    size = f"{len(indexed)} images, {indexed.meta['index']['type']}, dim " \
           f"{indexed.descriptors.shape[1]}"
    print(f"Machine: {machine()}", flush=True)

    if args.compare_batching:
        print(f"index: {index} ({size}); {len(photos)} distinct photos, top_k {args.top_k}, "
              f"{args.requests} requests per run", flush=True)
        compare_batching(index, photos, args)
        return
    port = free_loopback_port()
    server = start_server(index, port, args.top_k, extra=args.serve_args.split())
    url = f"http://127.0.0.1:{port}"
    try:
        run_load(url, warmup_photos, args.warmup, 1, args.max_seconds)
        rss_before = peak_rss_mib(server.pid)
        latencies, statuses, wall = run_load(url, photos, args.requests, args.concurrency,
                                             args.max_seconds)
        rss_after = peak_rss_mib(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:  # still busy with requests the clients gave up on
            server.kill()
            server.wait(30)
    milliseconds = np.array(latencies) * 1000
    ok = sum(status == 200 for status in statuses)
    p50, p90, p99 = np.percentile(milliseconds, [50, 90, 99])
    print(f"index: {index} ({size}); {len(photos)} distinct photos, top_k {args.top_k}")
    print(f"{len(statuses)} requests, concurrency {args.concurrency}: {ok} ok, "
          f"{len(statuses) - ok} failed, {wall:.1f} s")
    print("| requests | concurrency | ok | requests/s | p50 ms | p90 ms | p99 ms | mean ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(statuses)} | {args.concurrency} | {ok} | {len(statuses) / wall:.1f} | "
          f"{p50:.0f} | {p90:.0f} | {p99:.0f} | {milliseconds.mean():.0f} |")
    print(f"server peak RSS: {rss_before:.0f} MiB after warm-up, {rss_after:.0f} MiB after "
          f"the load (statuses: {sorted(set(statuses))})")


if __name__ == "__main__":
    main()
