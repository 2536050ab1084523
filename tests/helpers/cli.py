"""`vpr` subcommands run in-process through their own parsers."""

from __future__ import annotations

import argparse
import importlib

from vpr.cli import data as data_cli


def run_cli(module_name: str, argv: list[str]) -> int:
    """Runs `vpr ARGV` with only `vpr.cli.MODULE_NAME` registered (its parser, its run)."""
    parser = argparse.ArgumentParser(prog="vpr")
    subparsers = parser.add_subparsers()
    importlib.import_module(f"vpr.cli.{module_name}").add_parser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


def vpr_data(*argv: str) -> int:
    """Runs `vpr data ...` through the subcommand's own parser (as vpr.cli.main would)."""
    parser = argparse.ArgumentParser(prog="vpr")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", *argv])
    return args.func(args)
