"""`vpr test`: evaluate a checkpoint on one or more test sets."""

from __future__ import annotations

import argparse

from vpr.cli.flags import add_settings, explicit_settings
from vpr.cli.published import add_published_model_options, published_choice
from vpr.config.fields import option_of
from vpr.config.schema import FIELDS, iter_fields
from vpr.rerank.options import add_rerank_options, rerank_settings

# `vpr test` takes evaluation and hardware settings; the checkpoint carries the rest.
TEST_SECTIONS = ("test_data", "input", "eval", "hardware")
# A published --model (no checkpoint) also takes its image size and where to write.
TEST_SETTINGS = ("seed", "progress_bar", "published_model", "image_size", "exp_name", "log_dir")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "test", help="evaluate a checkpoint by Recall@N on test sets (no training)",
        description="Rebuild the model from the settings stored in --ckpt_path (or build the "
                    "published --model with its --weights) and report "
                    "Recall@N on each --test_path. Only evaluation and hardware settings are "
                    "taken: the checkpoint carries the model. Results are saved as JSON in "
                    "the run folder's results/.",
    )
    parser.add_argument("--ckpt_path", type=str, default=None,
                        help="a .ckpt file of vpr train (or give a published --model)")
    add_settings(parser, TEST_SECTIONS, TEST_SETTINGS, title="run")
    taken = {*TEST_SETTINGS, *(f.name for _, f in iter_fields(TEST_SECTIONS))}
    for name, (_, field) in FIELDS.items():
        if name not in taken:
            parser.add_argument(f"--{option_of(field).flag or name}", nargs="*",
                                action=_CarriedByCheckpoint, help=argparse.SUPPRESS,
                                default=argparse.SUPPRESS)
    add_published_model_options(parser, model_flag=False)
    add_rerank_options(parser)
    parser.set_defaults(func=run, test_parser=parser)


def run(args: argparse.Namespace) -> int:
    from vpr.training.run import test

    return report_tests(test(explicit_settings(args), args.ckpt_path,
                             weights=published_choice(args).weights,
                             rerank=rerank_settings(args)))


def report_tests(results: list[dict]) -> int:
    """Prints the recalls of each test set."""
    for result in results:
        recalls = ", ".join(f"{k}: {v:.1f}" for k, v in result["recalls"].items())
        print(f"Test {result['dataset']}: {recalls}")
        if "rerank" in result:
            before = ", ".join(f"{k}: {v:.1f}" for k, v in result["rerank"]["recalls"].items())
            print(f"  before re-ranking: {before}; re-ranking "
                  f"{result['rerank']['ms_per_query']:.1f} ms per query")
    return 0


class _CarriedByCheckpoint(argparse.Action):
    """A training setting given to `vpr test`: the checkpoint decides it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(f"{option_string}: vpr test takes the model and its training settings "
                     "from --ckpt_path; leave the flag out (python main.py --ckpt_path also "
                     "accepts it, if it matches the checkpoint)")
