"""How a location index folder is written so that it is never missing or half-written.

An index folder holds versions of its data and a pointer to the current one::

    INDEX/
      CURRENT           the name of the current version ("v-3"), replaced atomically
      v-3/              version.json (+ index.faiss); the rows are in store-N/ beside
                        it (`vpr.locate.store`); format 1: descriptors.npy, index.faiss,
                        meta.json
      .lock             held by the one process that writes (`vpr.utils.locking`)

A writer fills ``INDEX/.v-4.tmp/``, renames it to ``INDEX/v-4`` (complete, not yet used),
then atomically replaces ``CURRENT`` and deletes ``v-3``. The folder itself is never renamed,
so at every instant ``INDEX`` exists and ``CURRENT`` names a complete version. A reader
that finds its version deleted under it reads ``CURRENT`` again.

A crash at any step leaves at most: an unfinished ``.v-N.tmp`` folder, a finished ``v-N``
that ``CURRENT`` does not name, a temporary ``CURRENT`` file, or the old version still on
disk. `recover` removes these (saying so) the next time a writer, or a reader that can take
the lock at once, opens the index. Indexes of vpr <= 0.x kept the files directly in
``INDEX/`` and were replaced by renaming the whole folder (``.INDEX.old-PID`` beside it);
they are read as they are, upgraded on their next write, and their crash leftovers are
recovered too.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from vpr.utils.atomic import write_bytes_atomic

logger = logging.getLogger(__name__)

POINTER_FILE = "CURRENT"
LOCK_FILE = ".lock"
DATA_FILES = ("descriptors.npy", "index.faiss", "meta.json")
_VERSION = re.compile(r"^v-(\d+)$")
_UNFINISHED = re.compile(r"^\.v-(\d+)\.tmp$")


def current_version(index: Path) -> Path | None:
    """The folder with the index's current data, or None when there is none.

    A legacy index (files directly in ``index``) is its own data folder.
    """
    try:
        name = (index / POINTER_FILE).read_text().strip()
    except FileNotFoundError:
        return index if (index / "meta.json").is_file() else None
    if not _VERSION.match(name):
        raise ValueError(f"{index / POINTER_FILE}: expected a version name like v-1, "
                         f"found {name[:40]!r}")
    return index / name


def is_index(index: Path) -> bool:
    """Whether ``index`` holds an index (current or legacy layout)."""
    return (index / POINTER_FILE).is_file() or (index / "meta.json").is_file()


def new_version_folder(index: Path) -> Path:
    """A fresh ``.v-N.tmp`` folder to write the next version in (call with the lock held)."""
    numbers = [0]
    for entry in index.iterdir():
        match = _VERSION.match(entry.name) or _UNFINISHED.match(entry.name)
        if match:
            numbers.append(int(match.group(1)))
    folder = index / f".v-{max(numbers) + 1}.tmp"
    folder.mkdir()
    return folder


def _fsync_folder(folder: Path) -> None:
    """Flushes a folder's files and the folder itself to disk, so a power cut keeps them."""
    for entry in folder.iterdir():
        if entry.is_file():
            with open(entry, "rb") as file:
                os.fsync(file.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish(index: Path, unfinished: Path) -> Path:
    """Makes the finished ``unfinished`` folder the current version; deletes the old one.

    Returns:
        The new version's folder.
    """
    match = _UNFINISHED.match(unfinished.name)
    if not match:
        raise ValueError(f"{unfinished}: not a folder of new_version_folder")
    previous = current_version(index)
    _fsync_folder(unfinished)
    version = index / f"v-{match.group(1)}"
    os.replace(unfinished, version)
    write_bytes_atomic(index / POINTER_FILE, f"{version.name}\n".encode())
    if previous is not None and previous != version:
        _remove_data(previous, index)
    return version


def _remove_data(folder: Path, index: Path) -> None:
    """Deletes an old version (or a legacy index's top-level data files)."""
    if folder == index:
        for name in DATA_FILES:
            (index / name).unlink(missing_ok=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)


def restore_legacy_rename(index: Path) -> None:
    """Puts back ``.INDEX.old-PID`` when a legacy write crashed between its two renames."""
    if index.exists():
        return
    olds = sorted(index.parent.glob(f".{index.name}.old-*"), key=lambda p: p.stat().st_mtime)
    for old in reversed(olds):
        if not is_index(old):
            continue
        try:
            os.rename(old, index)
        except OSError:  # another process restored it first
            return
        logger.warning("%s was missing after an interrupted write; restored the previous "
                       "index from %s", index, old.name)
        return


def leftovers(index: Path) -> list[Path]:
    """What interrupted writes left in and beside ``index`` (nothing in a clean index)."""
    found: list[Path] = []
    if index.parent.is_dir():
        found += sorted(index.parent.glob(f".{index.name}.old-*"))
        # mkdtemp's names: the prefix, 8 random characters, the suffix.
        legacy_tmp = re.compile(rf"^\.{re.escape(index.name)}\.[a-z0-9_]{{8}}\.tmp$")
        found += sorted(path for path in index.parent.iterdir()
                        if legacy_tmp.match(path.name) and path.is_dir())
    if not index.is_dir():
        return found
    try:
        current = current_version(index)
    except ValueError:
        return found
    for entry in sorted(index.iterdir()):
        if _UNFINISHED.match(entry.name) or (entry.name.startswith(f".{POINTER_FILE}.")
                                             and entry.name.endswith(".tmp")):
            found.append(entry)
        elif _VERSION.match(entry.name) and entry != current:
            found.append(entry)
    if current is not None and current != index:
        found += [index / name for name in DATA_FILES if (index / name).exists()]
    return found


def recover(index: Path) -> list[Path]:
    """Removes the leftovers of interrupted writes, saying what each was (hold the lock).

    Returns:
        The paths removed.
    """
    removed = leftovers(index)
    for path in removed:
        if path.name.endswith(".tmp") and path.name.startswith(".v-"):
            why = "an unfinished version (a write was interrupted)"
        elif path.name.endswith(".tmp"):
            why = "an unfinished temporary file or folder (a write was interrupted)"
        elif ".old-" in path.name:
            why = "the previous index, kept during an interrupted replacement"
        elif path.parent == index and path.name in DATA_FILES:
            why = "a file of the legacy layout, replaced by a newer version"
        else:
            why = "a version that is not current (a write was interrupted before or after " \
                  "switching to it)"
        logger.warning("%s: removing %s: %s", index, path.name, why)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed
