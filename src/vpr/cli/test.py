"""`vpr test`: evaluate a checkpoint on one or more test sets."""

from __future__ import annotations

import argparse

from vpr.cli.options import add_data_options, add_model_options, add_run_options
from vpr.cli.published import add_published_model_options
from vpr.rerank.options import add_rerank_options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "test", help="evaluate a checkpoint by Recall@N on test sets (no training)",
        description="Rebuild the model from the hyper-parameters stored in --ckpt_path (or "
                    "build the published --model with its --weights) and "
                    "report Recall@N on each --test_path. Model flags are optional; one that "
                    "contradicts the checkpoint is an error. Results are saved as JSON in the "
                    "run folder's results/.",
    )
    parser.add_argument("--ckpt_path", type=str, default=None,
                        help="a .ckpt file of vpr train (or give a published --model)")
    add_data_options(parser, need_train=False)
    add_model_options(parser)
    add_run_options(parser)
    add_published_model_options(parser)
    add_rerank_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vpr.training.run import test

    for result in test(args):
        recalls = ", ".join(f"{k}: {v:.1f}" for k, v in result["recalls"].items())
        print(f"Test {result['dataset']}: {recalls}")
        if "rerank" in result:
            before = ", ".join(f"{k}: {v:.1f}" for k, v in result["rerank"]["recalls"].items())
            print(f"  before re-ranking: {before}; re-ranking "
                  f"{result['rerank']['ms_per_query']:.1f} ms per query")
    return 0
