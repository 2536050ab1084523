"""`vpr demo`: the whole system offline in a few minutes on a laptop CPU.

Makes the synthetic city (if absent), evaluates the untrained model, trains, tests on the
SF-like and Tokyo-like sets and prints untrained vs trained Recall@1/5.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from vpr.cli.flags import add_setting

# Settings tuned so that the demo finishes within 10 minutes on 2 CPU cores.
# From-scratch training on tiny images: Adam learns much faster than the seed's SGD here,
# and RandAugment is off because at 96x72 px it destroys most of a place's detail.
DEMO_TRAINING = {
    "agg_arch": "ConvAP",
    "pretrained": "none",
    "batch_size": 16,
    "img_per_place": 4,
    "max_epochs": 8,
    "num_workers": 2,
    "optimizer": "adam",
    "lr": 0.001,
    "randaugment_ops": 0,
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="offline tour: synthetic city, train, test, untrained vs trained recall",
        description="Generate the synthetic city (unless --data already holds it), evaluate "
                    "the untrained model, train ResNet-18 + ConvAP from scratch, test on the "
                    "SF-like and Tokyo-like sets and print untrained vs trained R@1/R@5. "
                    "Needs no network; about 3 minutes on 2 CPU cores.",
    )
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"),
                        help="where the synthetic city is (or will be) (default: data/synthetic)")
    parser.add_argument("--preset", default="demo", help="synthetic city preset (default: demo)")
    parser.add_argument("--max_epochs", type=int, default=DEMO_TRAINING["max_epochs"],
                        help=f"training epochs (default: {DEMO_TRAINING['max_epochs']})")
    parser.add_argument("--log_dir", default="logs", help="root folder of runs (default: logs)")
    parser.add_argument("--exp_name", default=None,
                        help="run folder name (default: demo_<timestamp>)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_setting(parser, "progress_bar")
    parser.set_defaults(func=run)


def _progress(args: argparse.Namespace) -> bool:
    return getattr(args, "progress_bar", True)


def demo_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The `vpr train` settings of the demo: `DEMO_TRAINING` and the synthetic city's sets."""
    data = args.data
    return {
        **DEMO_TRAINING,
        "train_path": str(data / "gsv_xs" / "train"),
        "val_path": str(data / "sf_xs" / "val"),
        "test_path": [str(data / "sf_xs" / "test"), str(data / "tokyo_xs" / "test")],
        "exp_name": args.exp_name or time.strftime("demo_%Y-%m-%d_%H-%M-%S"),
        "log_dir": str(args.log_dir),
        "seed": args.seed,
        "max_epochs": args.max_epochs,
        "progress_bar": _progress(args),
    }


def run(args: argparse.Namespace) -> int:
    import lightning as L

    import vpr
    from vpr.synthetic import generate_city
    from vpr.training.module import VPRModule
    from vpr.training.run import evaluate, resolve_config, train
    from vpr.utils.logs import setup_logging

    setup_logging()
    start = time.perf_counter()
    # Two rendering processes: the files do not depend on the count.
    generate_city(args.data, preset=args.preset, seed=args.seed,
                  progress=_progress(args), workers=2)
    settings = demo_settings(args)
    config = resolve_config(settings)
    L.seed_everything(args.seed, workers=True)
    untrained = evaluate(VPRModule(config.module_config(), vpr_version=vpr.__version__), config)
    result = train(settings)
    trained = result["tests"]
    elapsed = time.perf_counter() - start
    print()
    print(format_table(untrained, trained))
    print(f"\nRun folder: {result['run_dir']}  (total {elapsed / 60:.1f} min)")
    return 0


def format_table(untrained: list[dict], trained: list[dict]) -> str:
    """A markdown table: one row per test set, untrained vs trained R@1 and R@5."""
    lines = [
        "| test set | untrained R@1 | untrained R@5 | trained R@1 | trained R@5 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for before, after in zip(untrained, trained):
        name = "/".join(Path(before["dataset"]).parts[-2:])
        lines.append(
            f"| {name} | {before['recalls']['R@1']:.1f} | {before['recalls']['R@5']:.1f} | "
            f"{after['recalls']['R@1']:.1f} | {after['recalls']['R@5']:.1f} |"
        )
    return "\n".join(lines)
