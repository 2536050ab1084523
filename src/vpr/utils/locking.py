"""One writer at a time: an exclusive lock on a lock file, released when its process dies.

`fcntl.flock` locks belong to the open file, so the kernel drops them when the holder
exits or is killed: a crash never leaves a stale lock to clean by hand. The holder writes
its pid into the file so that a process kept waiting can say whom it waits for.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from types import TracebackType

from vpr.errors import UserError

logger = logging.getLogger(__name__)

# How often a waiting process tries the lock again.
POLL_SECONDS = 0.1


class LockTimeoutError(UserError):
    """Another process held the lock for longer than the caller agreed to wait."""


def lock_holder(path: str | Path) -> int | None:
    """The pid written in a lock file by its last holder, or None."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class FileLock:
    """An exclusive lock on ``path`` (created if needed), as a context manager.

    Args:
        path: the lock file; it stays on disk (removing it would let two processes lock
            two different files of the same name).
        timeout: seconds to wait for another holder; None waits forever, 0 does not wait.
        what: what the lock protects, for messages (e.g. ``"index runs/index"``).
    """

    def __init__(self, path: str | Path, timeout: float | None = None, what: str = "") -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.what = what or str(self.path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock, waiting up to ``timeout`` seconds.

        Raises:
            LockTimeoutError: still held by another process after ``timeout`` seconds.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = lock_holder(self.path)
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeoutError(
                        f"{self.what} is in use by another process (pid {holder or '?'}, "
                        f"lock file {self.path}); waited {self.timeout:g} s. Try again when "
                        "it has finished, or wait longer (lock_timeout)"
                    ) from None
                if not announced:
                    logger.warning("Waiting for pid %s to finish with %s (lock file %s)",
                                   holder or "?", self.what, self.path)
                    announced = True
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Gives the lock back (closing the file releases it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()
