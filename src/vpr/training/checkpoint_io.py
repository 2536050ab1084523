"""Checkpoints written beside their target, synced, then renamed: never half a file.

Lightning's own writer serialises to memory, then moves a temporary file from fsspec's
folder (``$TMPDIR``) onto the target; across file systems that move is a copy that first
truncates the target, so a kill mid-copy leaves a 0-byte ``last.ckpt``, and a full disk a
partial one. Ours writes the temporary file in the target's folder and renames it.
"""

from __future__ import annotations

import errno
import io
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from vpr.utils.atomic import write_bytes_atomic
from vpr.utils.disk import DiskError

_FULL = (errno.ENOSPC, errno.EDQUOT)


class AtomicCheckpointIO(TorchCheckpointIO):
    """A Lightning ``CheckpointIO``: temporary file beside the target, fsync, ``os.replace``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path,
                        storage_options: Any | None = None) -> None:
        """Saves ``checkpoint`` at ``path``; the previous file survives any failure.

        Raises:
            DiskError: the folder is full; the message names it and the space needed.
        """
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got "
                            f"{storage_options!r}")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        data = buffer.getbuffer()
        path = Path(path)
        try:
            write_bytes_atomic(path, data)
        except OSError as error:
            if error.errno not in _FULL:
                raise
            free = shutil.disk_usage(path.parent).free
            raise DiskError(
                f"no space left in {path.parent} to save {path.name}: it needs "
                f"{_megabytes(len(data))}, {_megabytes(free)} free; the previous checkpoint "
                "there is intact"
            ) from None


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
