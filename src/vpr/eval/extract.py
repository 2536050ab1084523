"""Computing descriptors of many images, streamed to a memory-mapped ``.npy`` file.

Peak memory stays one batch of images plus one batch of descriptors whatever the number of
images: each batch is written into its rows of a preallocated array (a file-backed memmap
when an ``out_path`` is given) instead of being kept in a list and concatenated at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vpr.data.images import open_rgb
from vpr.hardware import autocast
from vpr.inputs.batch_augment import InputTransform
from vpr.inputs.device_decode import collate_indexed, to_device

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


def extract_descriptors(
    model: nn.Module,
    dataset: Dataset,
    out_path: str | Path | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    precision: str | None = None,
    progress: bool = True,
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
        precision: Lightning's name: None/``"32-true"`` for float32, ``"auto"`` (bf16 where
            the hardware computes it natively, as training), ``"16-mixed"`` or
            ``"bf16-mixed"`` for autocast (`vpr.hardware.autocast`); descriptors are stored
            as float32 either way.
        progress: show a progress bar.

    Returns:
        (len(dataset), D) float32 descriptors: a read-only memmap of ``out_path`` when given,
        else an in-memory array.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False,
                        collate_fn=collate_indexed, pin_memory=device.type == "cuda")
    # uint8 batches (the fast reader) become normalised floats on the device.
    prepare = getattr(model, "input_transform", None) or InputTransform()
    prepare.to(device)
    was_training = model.training
    model.eval()
    model.to(device)
    total = len(dataset)
    descriptors: np.ndarray | None = None
    temporary = None
    if out_path is not None:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        with torch.inference_mode(), autocast(device, precision):
            for images, indices in tqdm(loader, desc="Descriptors", unit="batch",
                                        disable=not progress, leave=False):
                images = prepare(to_device(images, device))
                batch = model(images).float().cpu().numpy()
                if descriptors is None:
                    # The dimension is known from the first batch: allocate every row now.
                    shape = (total, batch.shape[1])
                    descriptors = (np.zeros(shape, np.float32) if temporary is None else
                                   open_memmap(temporary, mode="w+", dtype=np.float32,
                                               shape=shape))
                descriptors[np.asarray(indices)] = batch
        if descriptors is None:  # an empty dataset: no batch told the dimension
            dim = int(getattr(model, "descriptors_dim", 0) or 0)
            descriptors = np.zeros((0, dim), np.float32)
            if temporary is not None:
                with open(temporary, "wb") as file:  # np.save(path) would append ".npy"
                    np.save(file, descriptors)
        if temporary is not None:
            if isinstance(descriptors, np.memmap):
                descriptors.flush()
            del descriptors
            os.replace(temporary, out_path)
            return np.load(out_path, mmap_mode="r")
        return descriptors
    except BaseException:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise
    finally:
        model.train(was_training)
