"""Descriptor extraction speed of DINOv2 backbones (+SALAD, +BoQ) against ResNet-18 + ConvAP.

For each model and image size, in its own process (so the peak memory is its own): build
the model with random weights (speed does not depend on them), then time the forward pass
of `VPRModel` in eval mode under `torch.inference_mode()` on random images, as `vpr test`
extracts (fp32, and bf16 autocast where the CPU has native bf16 instructions, i.e.
avx512_bf16 or AMX; under autocast the last block/stage and the aggregator run in fp32, see
`VPRModel.forward`). Reports images/s and the process's peak resident memory.

    python bench/foundation_speed.py                      # the default table (CPU)
    python bench/foundation_speed.py --sizes 224 --models resnet18+ConvAP dinov2_vits14+SALAD
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

DEFAULT_MODELS = (
    "resnet18+ConvAP",
    "dinov2_vits14+SALAD",
    "dinov2_vits14+BoQ",
    "dinov2_vitb14+SALAD",
    "dinov2_vitb14+BoQ",
)
# The published head settings (SALAD 8448-D on DINOv2-B; BoQ 384 x 32 rows).
AGG_SETTINGS: dict[str, tuple[int | None, dict]] = {
    "ConvAP": (512, {}),
    "SALAD": (None, {}),
    "BoQ": (12288, {"proj_channels": 384, "row_dim": 32}),
}


def native_bf16() -> bool:
    """True when the CPU has bf16 instructions (avx512_bf16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def measure(spec: str, size: int, precision: str, batch: int, seconds: float) -> dict:
    """Times one configuration in this process; returns its figures."""
    from vpr.models.model import build_model

    backbone, agg = spec.split("+")
    descriptors_dim, options = AGG_SETTINGS[agg]
    torch.manual_seed(0)
    started = time.perf_counter()
    model = build_model(backbone, agg, descriptors_dim=descriptors_dim,
                        image_size=(size, size), pretrained="none", agg_options=options).eval()
    build_s = time.perf_counter() - started
    images = torch.randn(batch, 3, size, size)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    with torch.inference_mode(), autocast:
        model(images)  # warm-up: oneDNN builds its kernels for this shape on the first call
        done, started = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - started < seconds:
            descriptors = model(images)
            done += batch
        elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": spec, "size": size, "precision": precision, "batch": batch,
            "images_per_s": done / elapsed, "peak_mib": peak_mib, "build_s": build_s,
            "dim": int(descriptors.shape[1]),
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help="BACKBONE+AGGREGATOR specs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 322])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="time each configuration for at least this long")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--one", nargs=3, metavar=("SPEC", "SIZE", "PRECISION"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        spec, size, precision = args.one
        print(json.dumps(measure(spec, int(size), precision, args.batch, args.seconds)))
        return

    from hostinfo import cpu_model

    precisions = ["fp32"] + (["bf16"] if native_bf16() else [])
    rows = []
    for size in args.sizes:
        for spec in args.models:
            for precision in precisions:
                command = [sys.executable, __file__, "--one", spec, str(size), precision,
                           "--batch", str(args.batch), "--seconds", str(args.seconds)]
                if args.threads:
                    command += ["--threads", str(args.threads)]
                output = subprocess.run(command, check=True, capture_output=True, text=True)
                row = json.loads(output.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"{spec:22s} {size:4d} px {precision:5s} {row['images_per_s']:7.2f} img/s "
                      f"peak {row['peak_mib']:6.0f} MiB  ({row['dim']}-D, "
                      f"{row['params_m']:.1f} M params)", flush=True)
    print(f"\nmachine: {cpu_model()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}")
    print("| model | size | precision | images/s | vs ResNet-18+ConvAP | peak memory (MiB) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        base = next((r for r in rows if r["model"] == "resnet18+ConvAP"
                     and r["size"] == row["size"] and r["precision"] == row["precision"]), None)
        ratio = f"{row['images_per_s'] / base['images_per_s']:.2f}x" if base else "-"
        print(f"| {row['model']} ({row['dim']}-D) | {row['size']} | {row['precision']} | "
              f"{row['images_per_s']:.2f} | {ratio} | {row['peak_mib']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
