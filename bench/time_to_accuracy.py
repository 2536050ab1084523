"""Time to accuracy: the demo's training with vpr's fast pipeline against the seed's design.

Trains the `vpr demo` configuration twice on the same synthetic city, one run after the
other on the same machine: once with vpr's defaults (fast pipeline, bf16 where the hardware
has it, channels-last) and once with ``--pipeline seed`` (Pillow + per-image augmentation
in workers, fp32 on CPU / fp16 on GPU, NCHW). Validation R@1 (SF-like val set) is read from
each run's TensorBoard events, against seconds since the run's process started; the final
test recalls come from each run's results. Writes a PNG of both curves and prints a table.

    python bench/time_to_accuracy.py --data data/synthetic --out docs/images/time_to_accuracy.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {"vpr (fast pipeline)": [], "seed-style": ["--pipeline", "seed"]}


def _train_argv(data: Path, log_dir: Path, exp_name: str, max_epochs: int) -> list[str]:
    from vpr.cli.demo import demo_settings
    from vpr.sweep.grid import flag_argv

    namespace = argparse.Namespace(data=data, log_dir=log_dir, exp_name=exp_name, seed=0,
                                   max_epochs=max_epochs, progress_bar=False)
    # A command line to show and to run in a fresh process (the timing includes start-up).
    settings = demo_settings(namespace)
    return ["train"] + [word for key, value in settings.items()
                        for word in flag_argv(key, value)]


def _curve(run_dir: Path, launched: float) -> list[tuple[float, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(event.wall_time - launched, event.value) for event in events.Scalars("val/R@1")]


def _tests(run_dir: Path) -> dict[str, float]:
    out = {}
    for path in sorted(run_dir.glob("results/test_*/results.json")):
        result = json.loads(path.read_text())
        out[Path(result["dataset"]).parent.name] = result["recalls"]["R@1"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"),
                        help="the synthetic city, demo preset (`vpr synth --preset demo`)")
    parser.add_argument("--log_dir", type=Path, default=Path("/tmp/vpr_time_to_accuracy"))
    parser.add_argument("--max_epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("time_to_accuracy.png"))
    args = parser.parse_args()

    from vpr.synthetic import generate_city

    generate_city(args.data, preset="demo", progress=False, workers=2)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    curves, tests, walls = {}, {}, {}
    for label, extra in CONFIGS.items():
        exp_name = f"{'fast' if not extra else 'seed'}_{stamp}"
        argv = _train_argv(args.data, args.log_dir, exp_name, args.max_epochs) + extra
        launched = time.time()
        subprocess.run([sys.executable, "-m", "vpr", *argv], check=True)
        walls[label] = time.time() - launched
        run_dir = args.log_dir / "lightning_logs" / exp_name
        curves[label] = _curve(run_dir, launched)
        tests[label] = _tests(run_dir)
        print(f"{label}: {walls[label]:.0f} s, tests {tests[label]}", flush=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for label, points in curves.items():
        axis.plot([t for t, _ in points], [r for _, r in points], marker="o", label=label)
    axis.set_xlabel("seconds since the training process started")
    axis.set_ylabel("validation R@1 (SF-like val, %)")
    axis.set_title(f"Time to accuracy: vpr demo training ({args.max_epochs} epochs)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=120)

    # The bar: 95% of the seed-style run's best validation R@1.
    target = 0.95 * max(r for _, r in curves["seed-style"])
    names = list(next(iter(tests.values())))
    print(f"\n| configuration | wall time (s) | s per epoch | best val R@1 | first reaches "
          f"val R@1 >= {target:.1f} at (s) | " + " | ".join(f"test {n} R@1" for n in names) + " |")
    print("| --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(names))
    for label, points in curves.items():
        reached = next((t for t, r in points if r >= target), float("nan"))
        per_epoch = (points[-1][0] - points[0][0]) / max(1, len(points) - 1)
        print(f"| {label} | {walls[label]:.0f} | {per_epoch:.1f} | "
              f"{max(r for _, r in points):.1f} | {reached:.0f} | "
              + " | ".join(f"{tests[label][n]:.1f}" for n in names) + " |")
    curves_json = args.out.with_suffix(".json")
    curves_json.write_text(json.dumps({"curves": curves, "tests": tests, "walls": walls},
                                      indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
