"""Samplers that make training reproducible across crashes and processes.

Every item's randomness (which images of a place, which augmentation) is derived from
``(seed, epoch, index)`` alone, not from a global RNG whose state depends on history: a run
resumed at epoch k sees exactly the batches an uninterrupted run sees at epoch k. Both
samplers shard their indices by rank themselves, so the same code serves one process and DDP
(the Trainer runs with ``use_distributed_sampler=False``).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

_MIX = 1_000_003  # a prime that spreads (seed, epoch, index) over distinct item seeds


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one item's randomness in one epoch."""
    return ((seed * _MIX + epoch) * _MIX + index) % (2**63 - 1)


class EpochShuffleSampler(Sampler[tuple[int, int]]):
    """Shuffles ``num_items`` anew each epoch from ``(seed, epoch)``; yields (index, item seed).

    Lightning calls ``set_epoch`` at the start of every training epoch. Under DDP each rank
    takes every world_size-th item of the same permutation (padded to equal length).
    """

    def __init__(self, num_items: int, seed: int = 0) -> None:
        self.num_items = num_items
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _per_rank(self) -> int:
        _, world = _rank_and_world()
        return -(-self.num_items // world)

    def __len__(self) -> int:
        return self._per_rank()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rank, world = _rank_and_world()
        generator = torch.Generator().manual_seed(self.seed * _MIX + self.epoch)
        order = torch.randperm(self.num_items, generator=generator).tolist()
        total = self._per_rank() * world
        order += order[: total - len(order)]  # pad so every rank gets the same count
        for index in order[rank:total:world]:
            yield index, item_seed(self.seed, self.epoch, index)


class ShardedSequentialSampler(Sampler[int]):
    """Indices in order, split across ranks without padding (rank r takes r, r+W, ...)."""

    def __init__(self, num_items: int) -> None:
        self.num_items = num_items

    def __len__(self) -> int:
        rank, world = _rank_and_world()
        return len(range(rank, self.num_items, world))

    def __iter__(self) -> Iterator[int]:
        rank, world = _rank_and_world()
        return iter(range(rank, self.num_items, world))
