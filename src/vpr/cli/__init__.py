"""The `vpr` command line: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

# Each module has add_parser(subparsers) and run(args) -> int.
SUBCOMMANDS = ("demo", "train", "test", "index", "locate", "serve", "data", "synth", "download",
               "sweep", "report", "benchmark", "export")


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Old spellings read as one line, like errors; other warnings as Python shows them."""
    from vpr.config.fields import DeprecatedSpelling

    if issubclass(category, DeprecatedSpelling):
        return f"vpr: warning: {message}\n"
    return _python_format_warning(message, category, filename, lineno, line)


_python_format_warning = warnings.formatwarning
warnings.formatwarning = _format_warning


def build_parser() -> argparse.ArgumentParser:
    """The `vpr` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="vpr",
        description="Visual place recognition: train, evaluate and use image-geolocalization "
                    "models. Run `vpr demo` for a first offline tour.",
    )
    from vpr import __version__

    parser.add_argument("--version", action="version", version=f"vpr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"vpr.cli.{name}")
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vpr` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_guarded(args.func, args)


def run_guarded(func, args: argparse.Namespace) -> int:
    """Runs a subcommand; expected errors become one clear line and exit code 2."""
    from vpr.errors import USER_ERRORS

    if os.environ.get("VPR_DEBUG"):  # full tracebacks for developers
        return int(func(args) or 0)
    try:
        return int(func(args) or 0)
    except USER_ERRORS as error:
        logging.getLogger("vpr").debug("error", exc_info=True)
        print(f"vpr: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # A read-only, full or forbidden output folder is the user's to fix: one line.
        from vpr.utils.disk import disk_fault_message

        message = disk_fault_message(error)
        if message is None:
            raise
        logging.getLogger("vpr").debug("error", exc_info=True)
        print(f"vpr: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        # TrainingInterrupted carries the command that resumes the run.
        resume = f"; resume with: {interrupt}" if str(interrupt) else ""
        print(f"vpr: interrupted{resume}", file=sys.stderr)
        return 130
