"""The seed's two scripts, main.py and main_ckpt.py, as thin wrappers over `vpr`.

``python main.py ...`` trains (or, with ``--ckpt_path``, only tests that checkpoint);
``python main_ckpt.py --ckpt_path CKPT ...`` resumes training from CKPT, then tests the best.
All the seed's flags keep their names and defaults.
"""

from __future__ import annotations

import argparse

from vpr.cli import run_guarded
from vpr.cli.options import add_data_options, add_model_options, add_run_options


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--ckpt_path", type=str, default=None,
                        help="a .ckpt file: main.py tests it (no training); main_ckpt.py "
                             "resumes training from it")
    add_data_options(parser, need_train=True)
    add_model_options(parser)
    add_run_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """main.py: train, or test only when --ckpt_path is given."""
    parser = _parser("main.py", "Train a VPR model; with --ckpt_path, test that checkpoint.")
    args = parser.parse_args(argv)
    from vpr.cli import test as test_command
    from vpr.cli import train as train_command

    args.resume = None
    return run_guarded(test_command.run if args.ckpt_path else train_command.run, args)


def main_ckpt(argv: list[str] | None = None) -> int:
    """main_ckpt.py: resume training from --ckpt_path, then test the best checkpoint."""
    parser = _parser("main_ckpt.py", "Resume training from --ckpt_path, then test the best.")
    args = parser.parse_args(argv)
    if not args.ckpt_path:
        parser.error("--ckpt_path is required: the checkpoint to resume (e.g. .../last.ckpt)")
    from vpr.cli import train as train_command

    args.resume = args.ckpt_path
    return run_guarded(train_command.run, args)
