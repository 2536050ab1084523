"""CPU extraction speed and recall of one model: PyTorch eager (fp32, bf16) vs ONNX Runtime
(fp32, int8), measured side by side in one run.

Exports the checkpoint to ONNX, quantizes it to int8 (static, QDQ, per-channel weights,
calibrated on --calibration_count images spread over --calibration, once per method of
--int8_calibration), then:

- images/s of a forward pass over a batch of --batch real images (already decoded and
  normalised: the model alone), in --rounds rounds that alternate the configurations; each
  ratio is computed per round (neighbouring measurements share the machine's load) and its
  median reported, with the load average before and after each round;
- R@1/R@5 on each test set under --data, for every configuration.

torch and ONNX Runtime get the same threads (--threads, default one per physical core, as
both default to) and the same batch; eager runs as `vpr` extracts (inference mode,
channels-last), fp32 without autocast, bf16 under autocast as its own row.

    python bench/export_speed.py --ckpt CKPT --data data/synthetic --image_size 72 96

Prints a Markdown table (and writes it to --table when given).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostinfo import cpu_model  # noqa: E402

from vpr.export.onnx_export import export_onnx  # noqa: E402
from vpr.export.options import CALIBRATIONS, DEFAULT_CALIBRATION  # noqa: E402
from vpr.export.parity import load_images, normalise, onnx_runner  # noqa: E402
from vpr.export.quantize import calibration_images, quantize_int8  # noqa: E402
from vpr.export.recall import recall_of  # noqa: E402
from vpr.export.session import default_threads  # noqa: E402
from vpr.export.source import from_checkpoint  # noqa: E402


def int8_name(method: str) -> str:
    return f"ONNX Runtime int8 (static, QDQ, {method})"


def eager_runner(model: torch.nn.Module, bf16: bool):
    """float images -> descriptors by the eager model, channels-last as `vpr` evaluates."""
    model = model.to(memory_format=torch.channels_last)

    def run(images: torch.Tensor) -> np.ndarray:
        images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return model(images).float().numpy()

    return run


def images_per_second(run, images: torch.Tensor, seconds: float) -> float:
    """Calls ``run`` on ``images`` (after 2 warm-up calls) for about ``seconds``."""
    for _ in range(2):
        run(images)
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        run(images)
        calls += 1
    return calls * len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, type=Path)
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--tests", nargs="+", default=["sf_xs/test", "tokyo_xs/test"])
    parser.add_argument("--calibration", default="sf_xs/val",
                        help="folder under --data of the int8 calibration images")
    parser.add_argument("--calibration_count", type=int, default=128)
    parser.add_argument("--int8_calibration", choices=CALIBRATIONS, nargs="+",
                        default=[DEFAULT_CALIBRATION], help="one int8 row per method")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and ONNX Runtime threads (default: physical cores)")
    parser.add_argument("--image_size", type=int, nargs=2, default=None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="timing per configuration and round")
    parser.add_argument("--speed_only", action="store_true", help="skip the recall columns")
    parser.add_argument("--table", type=Path, default=None)
    args = parser.parse_args()

    from vpr.hardware import cpu_has_native_bf16

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    source = from_checkpoint(args.ckpt, tuple(args.image_size) if args.image_size else None)
    with tempfile.TemporaryDirectory() as folder:
        fp32_path = Path(folder) / "model.onnx"
        export_onnx(source, fp32_path)
        calibration = calibration_images(args.data / args.calibration, source.image_size,
                                         args.calibration_count)
        int8_paths = {method: quantize_int8(fp32_path, Path(folder) / f"model.{method}.onnx",
                                            normalise(calibration, source.mean, source.std),
                                            calibration=method)
                      for method in args.int8_calibration}
        runs = {"PyTorch eager fp32": eager_runner(source.model, bf16=False)}
        if cpu_has_native_bf16():
            runs["PyTorch eager bf16 (autocast)"] = eager_runner(source.model, bf16=True)
        runs["ONNX Runtime fp32"] = onnx_runner(fp32_path, threads)
        for method, path in int8_paths.items():
            runs[int8_name(method)] = onnx_runner(path, threads)

        images, _ = load_images(args.data / args.tests[0] / "queries", source.image_size,
                                limit=args.batch)
        batch = normalise(images, source.mean, source.std)
        speeds: dict[str, list[float]] = {name: [] for name in runs}
        loads = [os.getloadavg()[0]]
        for round_ in range(args.rounds):
            for name, run in runs.items():
                speeds[name].append(images_per_second(run, batch, args.seconds))
                print(f"round {round_}: {name}: {speeds[name][-1]:.1f} images/s", flush=True)
            loads.append(os.getloadavg()[0])
        tests = [] if args.speed_only else args.tests
        recalls = {name: {test: recall_of(run, args.data / test, source.image_size, source.mean,
                                          source.std) for test in tests}
                   for name, run in runs.items()}

    def ratio(name: str, over: str) -> float:
        """Median over rounds of the round's ratio (both measured seconds apart)."""
        return statistics.median(a / b for a, b in zip(speeds[name], speeds[over], strict=True))

    header = ["runtime", "images/s (median)", "x eager fp32 (median of rounds)"]
    for test in tests:
        header += [f"{test} R@1", f"{test} R@5"]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for name in runs:
        speed = statistics.median(speeds[name])
        cells = [name, f"{speed:.1f}", f"{ratio(name, 'PyTorch eager fp32'):.2f}"]
        for test in tests:
            cells += [f"{recalls[name][test][1]:.1f}", f"{recalls[name][test][5]:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    import onnxruntime

    machine = (f"{cpu_model()}, {os.cpu_count()} logical CPUs, load average (1 min) "
               f"{', '.join(f'{load:.1f}' for load in loads)} before round 0 and after each "
               f"round; torch {torch.__version__} ({torch.get_num_threads()} threads), "
               f"onnxruntime {onnxruntime.__version__} ({threads} threads), "
               f"Python {platform.python_version()}")
    height, width = source.image_size
    table = "\n".join([
        f"{args.ckpt.name}: {source.identity.get('backbone')} + {source.identity.get('agg_arch')}"
        f", {source.descriptors_dim}-D, {height}x{width} input, batch {args.batch}, "
        f"{args.rounds} rounds of {args.seconds:g} s per configuration; int8 calibrated by "
        f"{', '.join(args.int8_calibration)} on {len(calibration)} images of "
        f"{args.calibration}; "
        f"{machine}.", "",
        *lines, "",
        f"ONNX Runtime fp32 / eager fp32: {ratio('ONNX Runtime fp32', 'PyTorch eager fp32'):.2f}x;"
        + "".join(f" int8 {method} / ONNX fp32: "
                  f"{ratio(int8_name(method), 'ONNX Runtime fp32'):.2f}x;"
                  for method in args.int8_calibration)
        + " (medians of the rounds' ratios); per round: "
        + "; ".join(f"{name} {', '.join(f'{v:.1f}' for v in values)}"
                    for name, values in speeds.items())]) + "\n"
    print("\n" + table)
    if args.table:
        args.table.write_text(table)


if __name__ == "__main__":
    main()
