"""`vpr train`: train a model (or resume a run), validate every epoch, test the best."""

from __future__ import annotations

import argparse

from vpr.cli.backbone_options import add_backbone_training_options
from vpr.cli.options import add_data_options, add_model_options, add_run_options
from vpr.cli.published import add_published_model_options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model, validating every epoch, then test the best checkpoint",
        description="Train a backbone + aggregator with a metric-learning loss on a folder of "
                    "@-named images; validate by Recall@N every epoch; keep the best and last "
                    "checkpoints in <log_dir>/lightning_logs/<exp_name>/checkpoints/; finally "
                    "test the best checkpoint on each --test_path.",
    )
    add_data_options(parser, need_train=True)
    add_model_options(parser)
    add_backbone_training_options(parser)
    add_run_options(parser)
    add_published_model_options(parser, train=True)
    parser.add_argument("--resume", type=str, default=None, metavar="CKPT",
                        help="continue a run from its checkpoint (e.g. .../last.ckpt), with "
                             "optimizer state and epoch count; 'auto' picks the newest valid "
                             "checkpoint of --exp_name")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vpr.training.run import train

    result = train(args)
    if not result["is_global_zero"]:
        return 0  # DDP: rank 0 reports
    print(f"Run folder: {result['run_dir']}")
    print(f"Best checkpoint: {result['best_checkpoint']}")
    for test in result["tests"]:
        recalls = ", ".join(f"{k}: {v:.1f}" for k, v in test["recalls"].items())
        print(f"Test {test['dataset']}: {recalls}")
    return 0
