"""Disk faults as user errors: a read-only or full output folder is named in one line."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

# The errors that mean "this folder cannot take the output", with the cause shown to users.
DISK_FAULTS: dict[int, str] = {
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EACCES: "permission denied",
}


class DiskError(RuntimeError):
    """An output folder cannot be written: read-only, full, over quota or forbidden."""


def disk_fault_message(error: OSError) -> str | None:
    """One line naming the file or folder and the cause, or None if not a disk fault."""
    cause = DISK_FAULTS.get(error.errno or 0)
    if cause is None:
        return None
    where = error.filename if error.filename is not None else "the output folder"
    return f"cannot write {where}: {cause}"


def _nearest_existing(folder: Path) -> Path:
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable(folder: str | Path, what: str = "output folder") -> None:
    """Checks before long work that ``folder`` (or the folder that will hold it) takes files.

    Nothing is left behind: a small probe file is written, synced and removed in the
    nearest existing folder, so a run refused here does not claim its folder.

    Raises:
        DiskError: read-only, full, over quota or forbidden; the message names the folder.
    """
    folder = Path(folder)
    existing = _nearest_existing(folder)
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".vpr-write-probe.")
    except OSError as error:
        raise DiskError(_probe_message(folder, what, error)) from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(b"\0" * 4096)  # a whole page: a full tmpfs refuses it
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        raise DiskError(_probe_message(folder, what, error)) from None
    finally:
        Path(probe).unlink(missing_ok=True)


def _probe_message(folder: Path, what: str, error: OSError) -> str:
    cause = DISK_FAULTS.get(error.errno or 0, error.strerror or str(error))
    return f"{what} {folder} cannot be written: {cause}"
