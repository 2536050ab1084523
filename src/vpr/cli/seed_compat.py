"""The seed's two scripts, main.py and main_ckpt.py, as thin wrappers over `vpr`.

``python main.py ...`` trains (or, with ``--ckpt_path``, only tests that checkpoint);
``python main_ckpt.py --ckpt_path CKPT ...`` resumes training from CKPT, then tests the best.
All the seed's flags keep their names and defaults (every setting of `vpr train`).
"""

from __future__ import annotations

import argparse

from vpr.cli import run_guarded
from vpr.cli.flags import add_settings, explicit_settings


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--ckpt_path", type=str, default=None,
                        help="a .ckpt file: main.py tests it (no training); main_ckpt.py "
                             "resumes training from it")
    add_settings(parser)
    return parser


def _train(settings: dict, resume: str | None) -> int:
    from vpr.cli.train import report_training
    from vpr.training.run import train

    return report_training(train(settings, resume=resume))


def _test(settings: dict, ckpt_path: str) -> int:
    from vpr.cli.test import report_tests
    from vpr.training.run import test

    return report_tests(test(settings, ckpt_path))


def main(argv: list[str] | None = None) -> int:
    """main.py: train, or test only when --ckpt_path is given."""
    parser = _parser("main.py", "Train a VPR model; with --ckpt_path, test that checkpoint.")
    args = parser.parse_args(argv)
    settings = explicit_settings(args)
    if args.ckpt_path:
        # The seed's test command repeats the training paths: they do not matter here.
        settings = {k: v for k, v in settings.items() if k not in ("train_path", "val_path")}
        return run_guarded(lambda _: _test(settings, args.ckpt_path), args)
    return run_guarded(lambda _: _train(settings, None), args)


def main_ckpt(argv: list[str] | None = None) -> int:
    """main_ckpt.py: resume training from --ckpt_path, then test the best checkpoint."""
    parser = _parser("main_ckpt.py", "Resume training from --ckpt_path, then test the best.")
    args = parser.parse_args(argv)
    if not args.ckpt_path:
        parser.error("--ckpt_path is required: the checkpoint to resume (e.g. .../last.ckpt)")
    return run_guarded(lambda _: _train(explicit_settings(args), args.ckpt_path), args)
