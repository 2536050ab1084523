"""Start-up of a training run: values checked before the run folder exists, a failed start
that leaves no folder behind, and Ctrl-C that ends with the command to resume.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L

from vpr.utils.disk import check_writable

# (flag, lowest accepted value, whether the lowest value itself is accepted). An lr of 0
# is allowed: it evaluates a published model through the training loop unchanged.
_LOWER_BOUNDS: tuple[tuple[str, float, bool], ...] = (
    ("batch_size", 1, True), ("img_per_place", 1, True), ("min_img_per_place", 1, True),
    ("num_workers", 0, True), ("eval_batch_size", 1, True), ("positive_dist_threshold", 0, False),
    ("gradient_clip_val", 0, False), ("limit_train_batches", 0, False),
    ("num_nodes", 1, True),
)
_HPARAM_BOUNDS: tuple[tuple[str, float, bool], ...] = (
    ("lr", 0, True), ("momentum", 0, True), ("weight_decay", 0, True), ("max_epochs", 1, True),
    ("descriptors_dim", 1, True), ("miner_margin", 0, True), ("num_preds_to_save", 0, True),
)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message is the command that resumes the run."""


def check_train_values(args: argparse.Namespace, hparams: dict[str, Any], log_dir: Path,
                       error: type[Exception]) -> None:
    """Refuses out-of-range numbers and an unwritable --log_dir before any folder is made.

    Raises:
        error: the first invalid value, naming the flag; or DiskError for the folder.
    """
    checks = [(flag, getattr(args, flag, None), low, inclusive)
              for flag, low, inclusive in _LOWER_BOUNDS]
    checks += [(key, hparams.get(key), low, inclusive) for key, low, inclusive in _HPARAM_BOUNDS]
    for flag, value, low, inclusive in checks:
        if value is None or isinstance(value, bool):
            continue
        if (value < low) if inclusive else (value <= low):
            bound = f">= {low:g}" if inclusive else f"> {low:g}"
            raise error(f"--{flag} {value}: must be {bound}; nothing was started")
    check_writable(log_dir, "--log_dir")


# What a start-up writes in a new run folder before the first training step.
_STARTUP_FILES = ("config.yaml", "config-*.yaml", "info.log", "debug.log", "hparams.yaml",
                  "events.out.tfevents.*")


def _only_startup_files(run_dir: Path) -> bool:
    for path in run_dir.rglob("*"):
        if path.is_dir():
            continue
        if not any(path.match(pattern) for pattern in _STARTUP_FILES):
            return False
    return True


@contextlib.contextmanager
def release_folder_on_failed_start(run_dir: Path, created: bool) -> Iterator[None]:
    """Removes ``run_dir`` if set-up fails, when this start made it and it holds only what
    the start-up wrote (config, logs, empty TensorBoard files), so the name stays free."""
    try:
        yield
    except BaseException:
        if created and run_dir.is_dir() and _only_startup_files(run_dir):
            import logging

            for handler in list(logging.getLogger("vpr").handlers):
                if isinstance(handler, logging.FileHandler):
                    logging.getLogger("vpr").removeHandler(handler)
                    handler.close()
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def resume_command(run_dir: Path, exp_name: str, log_root: Path) -> str:
    """The command that continues ``run_dir``."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        return f"vpr train --resume {last}"
    return (f"vpr train --resume auto --exp_name {exp_name} --log_dir {log_root} "
            "(no checkpoint was saved yet: if it fails, start again with another --exp_name)")


@contextlib.contextmanager
def resumable_on_interrupt(trainer: L.Trainer, run_dir: Path, exp_name: str,
                           log_root: Path) -> Iterator[None]:
    """Turns Ctrl-C into ``TrainingInterrupted`` carrying the command that resumes the run.

    Lightning catches KeyboardInterrupt itself (``trainer/call.py``
    ``_call_and_handle_interrupt``): it marks the trainer INTERRUPTED, runs the callbacks'
    ``on_exception``, tears down, ignores further SIGINTs and calls ``sys.exit(1)``. We
    catch that SystemExit when the trainer says it was interrupted.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise TrainingInterrupted(resume_command(run_dir, exp_name, log_root)) from None
    except SystemExit:
        if not trainer.interrupted:
            raise
        raise TrainingInterrupted(resume_command(run_dir, exp_name, log_root)) from None
