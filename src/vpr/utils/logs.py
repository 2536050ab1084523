"""Logging to the console and to info.log / debug.log in a run folder."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is now (it may be replaced, e.g. by pytest or tqdm)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(run_dir: str | Path | None = None, file_prefix: str = "") -> None:
    """Sends the `vpr` logger to the console (INFO) and to ``run_dir`` (INFO and DEBUG files)."""
    root = logging.getLogger("vpr")
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console = _ConsoleHandler()
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root.addHandler(console)
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        for level, name in ((logging.INFO, "info.log"), (logging.DEBUG, "debug.log")):
            handler = logging.FileHandler(run_dir / f"{file_prefix}{name}")
            handler.setLevel(level)
            handler.setFormatter(logging.Formatter(FORMAT))
            root.addHandler(handler)
