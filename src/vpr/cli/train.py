"""`vpr train`: train a model (or resume a run), validate every epoch, test the best."""

from __future__ import annotations

import argparse
from typing import Any

from vpr.cli.flags import add_config_options, add_settings, explicit_settings
from vpr.cli.published import add_published_model_options, published_choice


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model, validating every epoch, then test the best checkpoint",
        description="Train a backbone + aggregator with a metric-learning loss on a folder of "
                    "@-named images; validate by Recall@N every epoch; keep the best and last "
                    "checkpoints in <log_dir>/lightning_logs/<exp_name>/checkpoints/; finally "
                    "test the best checkpoint on each --test_path.",
    )
    add_settings(parser)
    add_config_options(parser)
    add_published_model_options(parser, train=True, model_flag=False)
    parser.add_argument("--resume", type=str, default=None, metavar="CKPT",
                        help="continue a run from its checkpoint (e.g. .../last.ckpt), with "
                             "optimizer state and epoch count; 'auto' picks the newest valid "
                             "checkpoint of --exp_name")
    parser.set_defaults(func=run)


def chosen_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of a command line: a ``--config`` file's, then the flags typed."""
    from vpr.config import read_settings

    settings = read_settings(args.config) if getattr(args, "config", None) else {}
    return {**settings, **explicit_settings(args)}


def print_config(settings: dict[str, Any], resume: str | None = None) -> None:
    """Prints the resolved settings as YAML (what `vpr train --config` reads back)."""
    import yaml

    from vpr.training.run import resolve_config

    config = resolve_config(settings, resume)
    print(yaml.safe_dump({"config": config.to_dict()}, sort_keys=False), end="")


def run(args: argparse.Namespace) -> int:
    settings = chosen_settings(args)
    if args.print_config:
        print_config(settings, args.resume if args.resume not in (None, "auto") else None)
        return 0
    from vpr.training.run import train

    return report_training(train(settings, resume=args.resume,
                                 init_from=published_choice(args).weights))


def report_training(result: dict[str, Any]) -> int:
    """Prints where a training run went and its test recalls."""
    if not result["is_global_zero"]:
        return 0  # DDP: rank 0 reports
    print(f"Run folder: {result['run_dir']}")
    print(f"Best checkpoint: {result['best_checkpoint']}")
    for test in result["tests"]:
        recalls = ", ".join(f"{k}: {v:.1f}" for k, v in test["recalls"].items())
        print(f"Test {test['dataset']}: {recalls}")
    return 0
