"""THE descriptor extraction: one per-batch step and one sink, used by every path.

Two entry points share them: `VPRModule`'s validation and test steps (inside Lightning's
Trainer, which moves batches and applies the run's precision) and `extract_descriptors`
(its own DataLoader and `vpr.hardware.autocast`, for `vpr index`, `vpr locate`, `vpr serve`,
`vpr benchmark` and the multi-device index build). Both turn a batch into float32 rows with
`describe_batch` and place them by dataset index in a `DescriptorSink`, so the same model
and images give the same descriptors whichever command computed them.

Peak memory stays one batch of images plus one batch of descriptors whatever the number of
images: each batch is written into its rows of a preallocated array (a file-backed memmap
when an ``out_path`` is given) instead of being kept in a list and concatenated at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vpr.data.images import open_rgb
from vpr.hardware import autocast
from vpr.inputs.batch_augment import InputTransform
from vpr.inputs.device_decode import EncodedBatch, collate_indexed, to_device

Transform = Callable[[object], torch.Tensor]


class ImageFolderDataset(Dataset):
    """A plain list of image files; item ``i`` is ``(transform(image i), i)``, like `RetrievalSet`.

    Args:
        paths: the image files, in the order of the descriptors wanted.
        transform: maps what ``reader`` returns to a (3,H,W) tensor, e.g.
            `vpr.inputs.transforms.eval_transform` for Pillow images; None: the reader's output.
        reader: opens a file: `vpr.data.images.open_rgb` (Pillow) by default, or
            `vpr.inputs.decode.UInt8Reader` for uint8 tensors (the fast pipeline), or
            `vpr.inputs.device_decode.EncodedReader` for JPEGs decoded on ``device``.
    """

    def __init__(self, paths: Sequence[str | Path], transform: Transform | None = None,
                 reader: Callable[[Path], object] = open_rgb) -> None:
        self.paths = [Path(path) for path in paths]
        self.transform = transform
        self.reader = reader

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.reader(self.paths[index])
        return (self.transform(image) if self.transform else image), index


def input_transform_of(model: nn.Module) -> nn.Module:
    """How ``model`` wants its batches prepared: its ``input_transform`` (a `VPRModule`, an
    `OnnxExtractor`: uint8 to normalised floats with its mean/std), else ImageNet's."""
    return getattr(model, "input_transform", None) or InputTransform()


def describe_batch(model: Callable[[torch.Tensor], torch.Tensor],
                   images: torch.Tensor | EncodedBatch, prepare: Callable[[Any], Any],
                   device: str | torch.device) -> np.ndarray:
    """The descriptors of one batch: the one per-batch step of every extraction.

    Images are moved to ``device`` (decoded there if still JPEG bytes), prepared (uint8 to
    normalised floats, channels-last; float batches pass through) and described; the
    descriptors are cast to float32, whatever precision the forward pass ran in.

    Args:
        model: (B,3,H,W) model input -> (B,D) descriptors.
        images: a batch as the DataLoader gives it (uint8, float, or an `EncodedBatch`).
        prepare: the input transform (`input_transform_of`), already on ``device``.
        device: where ``model`` runs.

    Returns:
        (B, D) float32 descriptors.
    """
    return model(prepare(to_device(images, device))).float().cpu().numpy()


class DescriptorSink:
    """The descriptors of ``rows`` items, filled batch by batch at their dataset indices.

    Rows live in one preallocated array: in memory, in a ``.npy`` file written under a
    temporary name and renamed into place by `finish` (so a crash never leaves a file that
    looks complete), or in an array the caller gives (e.g. one rank's rows of a shared
    memmap). Rows no batch filled stay zero (under DDP each rank fills its own and the arrays
    are summed).

    Args:
        rows: the number of items.
        dim: the descriptor dimension; None: told by the first batch.
        out_path: a ``.npy`` file to stream the rows into; None keeps them in memory.
        into: an existing (rows, D) float32 array to write into instead.
    """

    def __init__(self, rows: int, dim: int | None = None, out_path: str | Path | None = None,
                 into: np.ndarray | None = None) -> None:
        if into is not None and out_path is not None:
            raise ValueError("give out_path or into, not both")
        if into is not None and len(into) != rows:
            raise ValueError(f"into has {len(into)} rows, expected {rows}")
        self.rows = rows
        self.out_path = Path(out_path) if out_path is not None else None
        self.temporary: Path | None = None
        if self.out_path is not None:
            self.out_path.parent.mkdir(parents=True, exist_ok=True)
            self.temporary = self.out_path.with_name(f".{self.out_path.name}.{os.getpid()}.tmp")
        self.array: np.ndarray | None = into
        if into is None and dim is not None:
            self._allocate(dim)

    def _allocate(self, dim: int) -> None:
        shape = (self.rows, dim)
        if self.temporary is None:
            self.array = np.zeros(shape, np.float32)
        elif self.rows == 0:  # nothing to map: a file of the header only
            self.array = np.zeros(shape, np.float32)
            with open(self.temporary, "wb") as file:  # np.save(path) would append ".npy"
                np.save(file, self.array)
        else:
            self.array = open_memmap(self.temporary, mode="w+", dtype=np.float32, shape=shape)

    def add(self, indices: torch.Tensor | np.ndarray | Sequence[int],
            descriptors: np.ndarray) -> None:
        """Writes ``descriptors[i]`` into row ``indices[i]``."""
        if self.array is None:  # the dimension is known from the first batch: every row now
            self._allocate(descriptors.shape[1])
        if torch.is_tensor(indices):
            indices = indices.cpu().numpy()
        self.array[np.asarray(indices)] = descriptors

    def finish(self, dim: int = 0) -> np.ndarray:
        """The filled array: a read-only memmap of ``out_path`` (renamed into place) when one
        was given, else the array itself.

        Args:
            dim: the dimension of an empty result when no batch told it.
        """
        if self.array is None:
            self._allocate(dim)
        if isinstance(self.array, np.memmap):
            self.array.flush()
        if self.temporary is None:
            return self.array
        self.array = None  # close the memmap before the rename
        os.replace(self.temporary, self.out_path)
        self.temporary = None
        return np.load(self.out_path, mmap_mode="r")

    def discard(self) -> None:
        """Drops the rows; a half-written temporary file is removed."""
        self.array = None
        if self.temporary is not None:
            self.temporary.unlink(missing_ok=True)
            self.temporary = None


def extract_descriptors(
    model: nn.Module,
    dataset: Dataset,
    out_path: str | Path | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    precision: str | None = None,
    progress: bool = True,
    into: np.ndarray | None = None,
) -> np.ndarray:
    """Computes the descriptor of every item of ``dataset`` with ``model``.

    Args:
        model: maps (B,3,H,W) images to (B,D) descriptors (a `VPRModel` or `VPRModule`).
        dataset: yields ``(image, index)`` pairs, e.g. `RetrievalSet` or `ImageFolderDataset`;
            row ``index`` of the result holds the descriptor of that item.
        out_path: a ``.npy`` file to stream the descriptors into (written under a temporary
            name, renamed when complete); None keeps them in memory.
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes.
        device: where the model runs, e.g. ``"cpu"`` or ``"cuda"``.
        precision: Lightning's name, as every command's ``--precision``: None/``"32-true"``
            for float32, ``"auto"`` (bf16 where the hardware computes it natively, as
            training), ``"16-mixed"`` or ``"bf16-mixed"`` for autocast
            (`vpr.hardware.autocast`); descriptors are stored as float32 either way.
        progress: show a progress bar.
        into: write the rows into this (len(dataset), D) array (e.g. a rank's rows of a
            shared memmap) instead of ``out_path`` or a new array.

    Returns:
        (len(dataset), D) float32 descriptors: a read-only memmap of ``out_path`` when given,
        ``into`` when given, else an in-memory array.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False,
                        collate_fn=collate_indexed, pin_memory=device.type == "cuda")
    prepare = input_transform_of(model).to(device)
    was_training = model.training
    model.eval()
    model.to(device)
    sink = DescriptorSink(len(dataset), out_path=out_path, into=into)
    try:
        with torch.inference_mode(), autocast(device, precision):
            for images, indices in tqdm(loader, desc="Descriptors", unit="batch",
                                        disable=not progress, leave=False):
                sink.add(indices, describe_batch(model, images, prepare, device))
        # An empty dataset: no batch told the dimension.
        return sink.finish(int(getattr(model, "descriptors_dim", 0) or 0))
    except BaseException:
        sink.discard()
        raise
    finally:
        model.train(was_training)
