"""Running a sweep: every (cell, seed) is an ordinary `vpr train` run in the sweep folder.

Runs go in-process by default (`vpr.training.run.train`, no interpreter start per run, and
tests can watch the calls); ``isolate=True`` runs each one as a `vpr train` subprocess
instead, so a crash, a leak or a CUDA out-of-memory state dies with its run.

Re-launching a sweep:

- a run with a ``done.json`` marker is skipped (its settings must match the grid's);
- a run interrupted mid-way (folder, no marker, not recorded as failed) resumes from its
  ``checkpoints/last.ckpt`` when that file is readable: a 20-epoch run cut at epoch 15
  keeps its 15 epochs. Without a usable ``last.ckpt`` its folder is moved aside to
  ``<name>.failed-<stamp>`` and the run starts again;
- a run that failed (an exception) is tried again from scratch, its folder moved aside.

Nothing is ever deleted.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vpr
from vpr.config import write_settings
from vpr.sweep.grid import Grid, RunSpec, comparable, validate
from vpr.sweep.records import (
    SweepError,
    SweepLock,
    move_aside,
    now,
    read_done,
    read_sweep,
    run_dir,
    write_done,
    write_grid_file,
    write_sweep,
)

logger = logging.getLogger("vpr")

# The subprocess entry point: `vpr` itself, whichever way this package was installed.
_CHILD = "import sys; from vpr.cli import main; sys.exit(main(sys.argv[1:]))"

TrainFunction = Callable[..., dict[str, Any]]


class RunFailed(RuntimeError):
    """A `vpr train` subprocess exited with an error."""


@dataclass
class PlannedRun:
    """A run and what launching the sweep now would do with it.

    ``action``: skip (finished), new, resume (from last.ckpt), or restart (the partial folder
    is moved aside first).
    """

    spec: RunSpec
    action: str
    reason: str = ""
    resume_from: Path | None = None


@dataclass
class SweepSummary:
    """How a launch went: run names per outcome, and each failure's message."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)


def plan_sweep(grid: Grid, sweep_dir: str | Path) -> list[PlannedRun]:
    """Decides, for every run of ``grid``, what a launch into ``sweep_dir`` does with it.

    Raises:
        SweepError: finished runs in ``sweep_dir`` were made with other settings than the
            grid's (a re-launch would mix results of two experiments).
    """
    sweep_dir = Path(sweep_dir)
    previous = {entry.get("exp_name"): entry
                for entry in (read_sweep(sweep_dir) or {}).get("runs", [])}
    planned, conflicts = [], []
    for spec in grid.runs():
        folder = run_dir(sweep_dir, spec.exp_name)
        done = read_done(folder)
        if done is not None:
            before = comparable(done.get("settings", {}))
            if before != spec.comparable_settings():
                conflicts.append(_difference(spec.exp_name, before, spec.comparable_settings()))
            planned.append(PlannedRun(spec, "skip", "finished"))
        elif folder.exists():
            status = previous.get(spec.exp_name, {}).get("status")
            last = folder / "checkpoints" / "last.ckpt"
            if status == "failed":
                planned.append(PlannedRun(spec, "restart", "failed before"))
            elif _readable_checkpoint(last):
                planned.append(PlannedRun(spec, "resume", "interrupted", resume_from=last))
            else:
                planned.append(PlannedRun(spec, "restart", "interrupted, no usable last.ckpt"))
        else:
            status = previous.get(spec.exp_name, {}).get("status")
            planned.append(PlannedRun(spec, "new", "failed before" if status == "failed" else ""))
    if conflicts:
        raise SweepError(
            f"{len(conflicts)} finished run(s) in {sweep_dir} were made with other settings "
            f"than this grid ({conflicts[0]}); use another --out, or move those run folders "
            "away to run them again"
        )
    return planned


def run_sweep(grid: Grid, sweep_dir: str | Path, *, isolate: bool = False,
              max_runs: int | None = None, train_fn: TrainFunction | None = None,
              command: str = "") -> SweepSummary:
    """Runs every unfinished run of ``grid`` in ``sweep_dir``; a failure does not stop the rest.

    Args:
        grid: the parsed grid.
        sweep_dir: the sweep folder (created if needed).
        isolate: run each `vpr train` in a subprocess instead of in this process.
        max_runs: start at most this many runs in this launch (the others stay pending).
        train_fn: the in-process training function (default `vpr.training.run.train`).
        command: the command line that launched the sweep, for the record.

    Returns:
        The names of the runs done, skipped, failed (with their error) and still pending.

    Raises:
        GridError: a run's flags are rejected by `vpr train` (before anything runs).
        SweepError: another launcher holds the folder, or finished runs disagree with the grid.
        KeyboardInterrupt: passed on after recording the interrupted run.
    """
    sweep_dir = Path(sweep_dir)
    validate(grid.runs(), sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    summary = SweepSummary()
    with SweepLock(sweep_dir):
        planned = plan_sweep(grid, sweep_dir)
        write_grid_file(sweep_dir, grid.to_dict())
        status = _status(grid, planned, sweep_dir, command)
        entries = {entry["exp_name"]: entry for entry in status["runs"]}
        write_sweep(sweep_dir, status)
        started = 0
        for item in planned:
            name = item.spec.exp_name
            if item.action == "skip":
                summary.skipped.append(name)
                continue
            if max_runs is not None and started >= max_runs:
                summary.pending.append(name)
                continue
            started += 1
            entry = entries[name]
            _launch(item, sweep_dir, entry, status, isolate, train_fn, summary)
    return summary


def _launch(item: PlannedRun, sweep_dir: Path, entry: dict[str, Any], status: dict[str, Any],
            isolate: bool, train_fn: TrainFunction | None, summary: SweepSummary) -> None:
    """Runs one planned run, recording its progress in ``status`` (sweep.json)."""
    name = item.spec.exp_name
    folder = run_dir(sweep_dir, name)
    if item.action == "restart":
        moved = move_aside(folder)
        entry.setdefault("moved_aside", []).append(str(moved))
        logger.info("Moved the partial run %s aside to %s", name, moved.name)
    entry.update(status="running", started=now(), finished=None, error=None, traceback=None,
                 attempts=entry.get("attempts", 0) + 1, resumed=item.action == "resume")
    write_sweep(sweep_dir, status)
    logger.info("Sweep run %s (%s)", name, "resuming" if item.resume_from else "starting")
    start = time.time()
    try:
        if isolate:
            record = _run_subprocess(item, sweep_dir)
        else:
            record = _run_in_process(item, sweep_dir, train_fn)
    except KeyboardInterrupt:
        entry.update(status="interrupted", finished=now())
        write_sweep(sweep_dir, status)
        raise
    except Exception as error:  # noqa: BLE001 - one failed run must not stop the sweep
        message = _one_line(error)
        entry.update(status="failed", finished=now(), error=message,
                     traceback=traceback.format_exc(limit=-8))
        write_sweep(sweep_dir, status)
        summary.failed[name] = message
        logger.error("Sweep run %s failed: %s", name, message)
        return
    finally:
        _detach_run_logs()
    record.update(started=entry["started"], finished=now(),
                  duration_s=round(time.time() - start, 1), resumed=item.action == "resume")
    write_done(folder, record)
    entry.update(status="done", finished=record["finished"], duration_s=record["duration_s"])
    write_sweep(sweep_dir, status)
    summary.done.append(name)


def _run_in_process(item: PlannedRun, sweep_dir: Path,
                    train_fn: TrainFunction | None) -> dict[str, Any]:
    if train_fn is None:
        from vpr.training import run as training_run  # looked up now: tests may replace it

        train_fn = training_run.train
    argv = item.spec.train_argv(sweep_dir, item.resume_from)
    resume = str(item.resume_from) if item.resume_from is not None else None
    result = train_fn(item.spec.train_settings(sweep_dir), resume=resume)
    return _done_record(item.spec, argv, [_test_summary(test) for test in result["tests"]],
                        best=result.get("best_checkpoint"), last=result.get("last_checkpoint"))


def _run_subprocess(item: PlannedRun, sweep_dir: Path) -> dict[str, Any]:
    argv = item.spec.train_argv(sweep_dir, item.resume_from)
    # The child reads the run's settings from a file, as `vpr train --config` does.
    settings_file = sweep_dir / "settings" / f"{item.spec.exp_name}.yaml"
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    write_settings(settings_file, item.spec.train_settings(sweep_dir))
    child_argv = ["train", "--config", str(settings_file)]
    if item.resume_from is not None:
        child_argv += ["--resume", str(item.resume_from)]
    start = time.time()
    process = subprocess.Popen([sys.executable, "-c", _CHILD, *child_argv],
                               stderr=subprocess.PIPE)
    tail = b""
    try:
        # Pass the child's stderr (logs, progress bars) through, keeping the end for errors.
        assert process.stderr is not None
        for chunk in iter(lambda: process.stderr.read1(4096), b""):
            sys.stderr.write(chunk.decode(errors="replace"))
            sys.stderr.flush()
            tail = (tail + chunk)[-8192:]
        code = process.wait()
    except BaseException:
        process.terminate()
        process.wait()
        raise
    if code != 0:
        raise RunFailed(_child_error(tail.decode(errors="replace"), code))
    folder = run_dir(sweep_dir, item.spec.exp_name)
    tests = _results_since(folder, start, item.spec.settings.get("test_path"))
    best = tests[0].get("checkpoint") if tests else None
    return _done_record(item.spec, argv, [_test_summary(test) for test in tests], best=best,
                        last=str(folder / "checkpoints" / "last.ckpt"))


def _done_record(spec: RunSpec, argv: list[str], tests: list[dict[str, Any]],
                 best: Any, last: Any) -> dict[str, Any]:
    """The content of done.json: what ran, and the test results that the report reads."""
    return {
        "exp_name": spec.exp_name,
        "cell": spec.cell,
        "seed": spec.seed,
        "settings": spec.settings,
        "command": "vpr " + shlex.join(argv),
        "vpr_version": vpr.__version__,
        "best_checkpoint": str(best) if best else None,
        "last_checkpoint": str(last) if last else None,
        "tests": tests,
    }


def _test_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The parts of a test's results.json the report needs."""
    groups = {name: group.get("recalls", {})
              for name, group in (result.get("recalls_per_group") or {}).items()}
    return {
        "dataset": str(result.get("dataset")),
        "queries_num": result.get("queries_num"),
        "recalls": result.get("recalls", {}),
        "recalls_per_group": groups,
        "results_dir": result.get("results_dir"),
    }


def _results_since(folder: Path, start: float, test_paths: Any) -> list[dict[str, Any]]:
    """The newest results.json per test set written after ``start``, in --test_path order."""
    newest: dict[str, tuple[float, dict[str, Any]]] = {}
    for path in (folder / "results").glob("test_*/results.json"):
        mtime = path.stat().st_mtime
        if mtime < start - 1:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        key = str(data.get("dataset"))
        if key not in newest or mtime > newest[key][0]:
            newest[key] = (mtime, data)
    order = [str(p) for p in (test_paths if isinstance(test_paths, list) else [test_paths])]
    return [newest[key][1] for key in sorted(newest, key=lambda k: _position(k, order))]


def _position(dataset: str, order: list[str]) -> tuple[int, str]:
    for index, path in enumerate(order):
        if Path(dataset) == Path(path) or Path(dataset).resolve() == Path(path).resolve():
            return index, dataset
    return len(order), dataset


def _status(grid: Grid, planned: list[PlannedRun], sweep_dir: Path,
            command: str) -> dict[str, Any]:
    """sweep.json for this launch: the plan, keeping what earlier launches recorded."""
    previous = read_sweep(sweep_dir) or {}
    before = {entry.get("exp_name"): entry for entry in previous.get("runs", [])}
    runs = []
    for item in planned:
        spec = item.spec
        entry = dict(before.get(spec.exp_name, {}))
        entry.update(exp_name=spec.exp_name, cell=spec.cell, seed=spec.seed,
                     command="vpr " + shlex.join(spec.train_argv(sweep_dir)))
        if item.action == "skip":
            entry["status"] = "done"
            entry["error"] = None
        elif entry.get("status") not in ("failed", "interrupted"):
            entry["status"] = "pending"
        runs.append(entry)
    planned_names = {item.spec.exp_name for item in planned}
    # Runs of an earlier, different grid stay listed, apart, so nothing is forgotten.
    others = [entry for name, entry in before.items() if name not in planned_names]
    others += [entry for entry in previous.get("other_runs", [])
               if entry.get("exp_name") not in planned_names]
    return {
        "name": grid.name,
        "grid_file": str(grid.source) if grid.source else None,
        "command": command,
        "created": previous.get("created") or now(),
        "keys": grid.keys,
        "seeds": grid.seeds,
        "base": grid.base,
        "runs": runs,
        "other_runs": others,
    }


def _readable_checkpoint(path: Path) -> bool:
    if not path.is_file():
        return False
    from vpr.training.checkpoints import CheckpointError, read_checkpoint_hparams

    try:
        read_checkpoint_hparams(path)
    except CheckpointError:
        return False
    return True


def _difference(name: str, before: dict[str, Any], now_settings: dict[str, Any]) -> str:
    for key in sorted(set(before) | set(now_settings)):
        if before.get(key) != now_settings.get(key):
            return f"{name}: {key} was {before.get(key)!r}, the grid says {now_settings.get(key)!r}"
    return name


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    message = text[0] if text else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _child_error(output: str, code: int) -> str:
    """The error line of a failed `vpr train` subprocess (its last `vpr: error:` line)."""
    lines = [line.strip() for line in output.replace("\r", "\n").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("vpr: error:"):
            return line.removeprefix("vpr: error:").strip()
    return f"exit code {code}: {lines[-1]}" if lines else f"exit code {code}"


def _detach_run_logs() -> None:
    """Stops the `vpr` logger writing into the last run's info.log/debug.log."""
    from vpr.utils.logs import setup_logging

    setup_logging()
