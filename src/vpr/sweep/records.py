"""What a sweep folder holds, and reading/writing it.

::

    SWEEP_DIR/
      grid.yaml                      the grid as run (cells listed, paper numbers kept)
      sweep.json                     every run's status: pending/running/done/failed/interrupted
      sweep.lock                     present while a launcher works on the folder
      lightning_logs/<exp_name>/     an ordinary `vpr train` run folder, plus
        done.json                    written last, atomically: the run finished; its results
      lightning_logs/<exp_name>.failed-<stamp>/   a partial run moved aside (never deleted)
      report/                        `vpr report` output
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from vpr.utils.atomic import write_bytes_atomic, write_json_atomic

logger = logging.getLogger("vpr")

SWEEP_FILE = "sweep.json"
GRID_FILE = "grid.yaml"
LOCK_FILE = "sweep.lock"
DONE_FILE = "done.json"
RUNS_FOLDER = "lightning_logs"


class SweepError(RuntimeError):
    """A sweep cannot start or be reported: the message says why and what to do."""


def run_dir(sweep_dir: str | Path, exp_name: str) -> Path:
    """The run folder of ``exp_name`` in a sweep (``vpr train --log_dir SWEEP_DIR``)."""
    return Path(sweep_dir) / RUNS_FOLDER / exp_name


def now() -> str:
    """The local time as ``2024-05-01T12:00:00``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None if it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_done(folder: Path) -> dict[str, Any] | None:
    """The done marker of a run folder, or None when the run has not finished."""
    data = read_json(folder / DONE_FILE)
    return data if isinstance(data, dict) else None


def write_done(folder: Path, record: dict[str, Any]) -> None:
    """Marks a run finished; atomic, so a crash never leaves half a marker."""
    write_json_atomic(folder / DONE_FILE, record)


def read_sweep(sweep_dir: str | Path) -> dict[str, Any] | None:
    """The sweep's status file, or None."""
    data = read_json(Path(sweep_dir) / SWEEP_FILE)
    return data if isinstance(data, dict) else None


def write_sweep(sweep_dir: str | Path, status: dict[str, Any]) -> None:
    """Writes the status file atomically, stamping ``updated``."""
    status["updated"] = now()
    write_json_atomic(Path(sweep_dir) / SWEEP_FILE, status)


def read_grid_file(sweep_dir: str | Path) -> dict[str, Any] | None:
    """The grid saved in a sweep folder, or None."""
    path = Path(sweep_dir) / GRID_FILE
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else None


def write_grid_file(sweep_dir: str | Path, data: dict[str, Any]) -> None:
    """Saves the grid as run beside its results."""
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    write_bytes_atomic(Path(sweep_dir) / GRID_FILE, text.encode())


def move_aside(folder: Path) -> Path:
    """Renames a partial run folder to ``<name>.failed-<stamp>`` (never deletes it)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder.with_name(f"{folder.name}.failed-{stamp}")
    counter = 1
    while target.exists():
        counter += 1
        target = folder.with_name(f"{folder.name}.failed-{stamp}_{counter}")
    folder.rename(target)
    return target


class SweepLock:
    """``sweep.lock``: one launcher per sweep folder, so two never move each other's runs.

    A lock left by a process that is gone (same host) is taken over; one from another host
    (e.g. an earlier Colab runtime on the same Drive) is taken over with a warning, since
    its process cannot be checked.
    """

    def __init__(self, sweep_dir: str | Path) -> None:
        self.path = Path(sweep_dir) / LOCK_FILE
        self.held = False

    def __enter__(self) -> SweepLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Takes the lock or raises SweepError naming the process that holds it."""
        mine = {"pid": os.getpid(), "host": socket.gethostname(), "started": now()}
        try:
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_json(self.path) or {}
            if holder.get("host") == mine["host"] and _alive(holder.get("pid")):
                raise SweepError(
                    f"{self.path.parent} is being run by process {holder.get('pid')} (since "
                    f"{holder.get('started')}); wait for it, or stop it first"
                ) from None
            if holder.get("host") not in (None, mine["host"]):
                logger.warning("Taking over %s left by host %s", self.path, holder.get("host"))
            write_json_atomic(self.path, mine)
        else:
            with os.fdopen(handle, "w") as file:
                json.dump(mine, file)
        self.held = True

    def release(self) -> None:
        """Removes the lock if this process holds it."""
        if self.held and (read_json(self.path) or {}).get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False  # our own stale lock, e.g. from an interrupted launch in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
