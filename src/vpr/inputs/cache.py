"""An in-RAM cache of decoded images, shared by every DataLoader worker.

Decoding a JPEG costs more than anything else a worker does; a dataset whose decoded,
resized images fit in memory need only be decoded once. The cache is one uint8 tensor in
shared memory (``N x 3 x H x W``) plus a "filled" flag per image, created before the
workers start: whichever worker first reads an image stores it, and every worker (and
every later epoch) reuses it. Two workers filling the same slot write the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


class CachedReader:
    """Wraps ``read(path) -> uint8 (3,H,W)`` of fixed size with a shared-memory cache.

    Args:
        paths: every image the cache may hold.
        read: the reader to cache, returning tensors of shape ``(3, *image_size)``.
        image_size: (height, width) of what ``read`` returns.
        max_bytes: refuse (with an error saying how much is needed) above this size.
    """

    def __init__(self, paths: Sequence[str | Path], read: Callable[[Path], torch.Tensor],
                 image_size: tuple[int, int], max_bytes: int | None = None) -> None:
        self.read = read
        self.slot = {Path(path): index for index, path in enumerate(paths)}
        shape = (len(self.slot), 3, *image_size)
        needed = int(torch.Size(shape).numel())
        if max_bytes is not None and needed > max_bytes:
            raise MemoryError(
                f"cache_images needs {needed / 2**30:.1f} GiB for {len(self.slot)} images at "
                f"{image_size[0]}x{image_size[1]}, more than the {max_bytes / 2**30:.1f} GiB "
                "allowed; turn off cache_images or lower image_size"
            )
        self.images = torch.empty(shape, dtype=torch.uint8).share_memory_()
        self.filled = torch.zeros(len(self.slot), dtype=torch.bool).share_memory_()
        logger.info("Image cache: %d images, %.2f GiB of shared memory", len(self.slot),
                    needed / 2**30)

    def __call__(self, path: str | Path) -> torch.Tensor:
        index = self.slot.get(Path(path))
        if index is None:
            return self.read(path)
        if not self.filled[index]:
            self.images[index] = self.read(path)
            self.filled[index] = True
        return self.images[index].clone()
