"""Baselines on the synthetic test sets: raw pixels, the untrained model, a trained checkpoint.

For each test set (by default the SF-like ``sf_xs/test`` and the Tokyo-like
``tokyo_xs/test`` of a synthetic city made by ``vpr synth`` / ``vpr demo``) this prints
Recall@1/5 overall and per query condition (day / sunset / night, read from the query file
names by `vpr.eval.grouping`'s ``auto`` rule) for up to three methods:

- ``pixels``: every image downsampled (box filter) to a tiny RGB thumbnail (16x12 by
  default), flattened, values in [0, 1], exact L2 search;
- ``untrained``: ResNet-18 + ConvAP with random weights, built exactly as ``vpr demo``
  builds it (the demo's hyper-parameters, ``pretrained none``, ``seed_everything(SEED)``
  then the module), so its recalls equal the demo's "untrained" column;
- ``trained``: the checkpoint given with ``--ckpt`` (e.g. the best checkpoint of a
  ``vpr demo`` run), at its own image size.

Everything goes through the package's own evaluation: `RetrievalSet` (positives within
25 m), `extract_descriptors`, `vpr.eval.search.search` and
`vpr.eval.report.evaluate_retrieval`.

Usage::

    python bench/synthetic_baselines.py --data data/synthetic \\
        --ckpt logs/lightning_logs/demo_<time>/checkpoints/best_*.ckpt [--json out.json]
    python bench/synthetic_baselines.py --data data/synthetic --methods pixels untrained
    python bench/synthetic_baselines.py --data data/synthetic --thumbnail 32x24 --methods pixels
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from vpr.data.datasets import RetrievalSet
from vpr.eval.extract import extract_descriptors
from vpr.eval.report import evaluate_retrieval
from vpr.eval.search import search
from vpr.inputs.transforms import eval_transform

METHODS = ("pixels", "untrained", "trained")
DEFAULT_SETS = ("sf_xs/test", "tokyo_xs/test")
CONDITIONS = ("day", "sunset", "night")
N_VALUES = (1, 5)


def parse_size(text: str) -> tuple[int, int]:
    """``"16x12"`` -> (16, 12) as (width, height)."""
    width, _, height = text.lower().partition("x")
    try:
        size = (int(width), int(height or width))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT, e.g. 16x12, got {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"thumbnail size must be positive, got {text!r}")
    return size


class Thumbnail:
    """PIL image -> (H*W*3,) float tensor in [0, 1]: the image box-filtered to ``size``."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        small = image.convert("RGB").resize(self.size, Image.Resampling.BOX)
        return torch.from_numpy(np.asarray(small, dtype=np.float32).reshape(-1) / 255.0)


def untrained_module(seed: int) -> tuple[nn.Module, tuple[int, int] | None]:
    """The randomly initialised model of ``vpr demo`` (same hyper-parameters, same seed)."""
    import lightning as L

    from vpr.cli.demo import demo_settings
    from vpr.training.module import VPRModule
    from vpr.training.run import resolve_config

    args = argparse.Namespace(data=Path("unused"), exp_name="baseline", log_dir="unused",
                              seed=seed, max_epochs=8, progress_bar=False)
    config = resolve_config(demo_settings(args))
    # vpr demo seeds, then builds the module: the same order gives the same weights.
    L.seed_everything(seed, workers=True, verbose=False)
    module = VPRModule(config.module_config())
    size = config.image_size
    return module, tuple(size) if size else None


def trained_module(ckpt: Path) -> tuple[nn.Module, tuple[int, int] | None]:
    """A checkpoint of `vpr train` / `vpr demo`, loaded on the CPU (weights only)."""
    from vpr.locate.index import load_model

    module, hparams = load_model(ckpt)
    size = hparams.get("image_size")
    return module, tuple(size) if size else None


def evaluate_method(model: nn.Module, test_set: RetrievalSet, batch_size: int,
                    device: str) -> dict[str, Any]:
    """Descriptors of every image of ``test_set``, exact search, the package's evaluation."""
    descriptors = extract_descriptors(model, test_set, batch_size=batch_size, device=device,
                                      progress=False)
    database = descriptors[: test_set.database_num]
    queries = descriptors[test_set.database_num :]
    distances, predictions = search(database, queries, max(N_VALUES))
    return evaluate_retrieval(
        test_set.database_utm, test_set.query_utm, test_set.query_paths,
        test_set.database_paths, predictions, distances, n_values=N_VALUES,
        group_rule="auto", positive_dist_threshold=test_set.positive_dist_threshold,
        positives_per_query=test_set.positives_per_query,
    )


def run(data: Path, sets: Sequence[str], methods: Sequence[str], ckpt: Path | None,
        thumbnail: tuple[int, int], seed: int, batch_size: int, device: str,
        log=print) -> list[dict[str, Any]]:
    """Evaluates each method on each test set; returns one row per (set, method)."""
    rows: list[dict[str, Any]] = []
    for method in methods:
        started = time.perf_counter()
        if method == "pixels":
            model: nn.Module = nn.Identity()
            transform = Thumbnail(thumbnail)
            label = f"raw pixels {thumbnail[0]}x{thumbnail[1]} RGB"
        elif method == "untrained":
            model, size = untrained_module(seed)
            transform = eval_transform(size)
            label = "untrained ResNet-18 + ConvAP"
        elif method == "trained":
            if ckpt is None:
                raise SystemExit("the 'trained' method needs --ckpt")
            model, size = trained_module(ckpt)
            transform = eval_transform(size)
            label = "trained (vpr demo)"
        else:
            raise SystemExit(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
        for name in sets:
            set_started = time.perf_counter()
            test_set = RetrievalSet(data / name, transform)
            report = evaluate_method(model, test_set, batch_size, device)
            rows.append({"set": name, "method": method, "label": label,
                         "seconds": round(time.perf_counter() - set_started, 1), **report})
            log(f"{label} on {name}: "
                + ", ".join(f"{k} {v:.1f}" for k, v in report["recalls"].items())
                + f" ({time.perf_counter() - set_started:.0f} s)")
        log(f"{label}: {time.perf_counter() - started:.0f} s in all")
    return rows


def _cell(recalls: dict[str, float] | None, n: int) -> str:
    return "-" if recalls is None else f"{recalls[f'R@{n}']:.1f}"


def format_tables(rows: Sequence[dict[str, Any]]) -> str:
    """One markdown table per test set: overall and per-condition R@1 / R@5 of each method."""
    out: list[str] = []
    for name in dict.fromkeys(row["set"] for row in rows):
        set_rows = [row for row in rows if row["set"] == name]
        groups = set_rows[0]["recalls_per_group"]
        conditions = [c for c in CONDITIONS if c in groups] + sorted(
            c for c in groups if c not in CONDITIONS)
        header = [f"all ({set_rows[0]['queries_num']})"] + [
            f"{c} ({groups[c]['queries_num']})" for c in conditions]
        out.append(f"{name}: {set_rows[0]['database_num']} database images, "
                   f"{set_rows[0]['queries_num']} queries")
        out.append("")
        out.append("| method | " + " | ".join(f"{h} R@{n}" for h in header for n in N_VALUES)
                   + " |")
        out.append("| --- |" + " ---: |" * (len(header) * len(N_VALUES)))
        for row in set_rows:
            cells = [_cell(row["recalls"], n) for n in N_VALUES]
            for condition in conditions:
                group = row["recalls_per_group"].get(condition)
                cells += [_cell(group and group["recalls"], n) for n in N_VALUES]
            out.append(f"| {row['label']} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Usage examples are in the module docstring (bench/synthetic_baselines.py).")
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"),
                        help="the synthetic city (default: data/synthetic)")
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS),
                        help="test sets under --data, each with database/ and queries/ "
                             f"(default: {' '.join(DEFAULT_SETS)})")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=None,
                        help="default: all three with --ckpt, else pixels and untrained")
    parser.add_argument("--ckpt", type=Path, default=None,
                        help="the trained checkpoint (e.g. the best one of a vpr demo run)")
    parser.add_argument("--thumbnail", type=parse_size, default=(16, 12),
                        help="pixel baseline thumbnail WIDTHxHEIGHT (default: 16x12)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the untrained model; vpr demo's --seed (default: 0)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write every result here")
    args = parser.parse_args(argv)

    methods = args.methods or (list(METHODS) if args.ckpt else ["pixels", "untrained"])
    started = time.perf_counter()
    rows = run(args.data, args.sets, methods, args.ckpt, args.thumbnail, args.seed,
               args.batch_size, args.device, log=lambda text: print(text, file=sys.stderr))
    print(format_tables(rows))
    print(f"total {time.perf_counter() - started:.0f} s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
