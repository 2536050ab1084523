"""Building a location index on several devices (and machines) with torch.distributed.

`build_on_devices` starts ``devices x num_nodes`` processes through Lightning Fabric (DDP:
gloo on CPUs, NCCL on GPUs); the image list is split into contiguous shards, one per rank,
and each rank writes its shard's descriptors straight into its rows of one memory-mapped
``.npy`` file (`vpr.eval.extract.extract_descriptors` with ``into``). Rank 0 holds the
index's lock and does everything else (metadata, faiss index, publishing), exactly as
`LocationIndex.build` does in one process, so the merged index is the single-process one:
same rows in the same order, same descriptors.

Every rank must see the same paths: the database and the index folder on a file system
shared by the machines (one machine: any folder). With ``num_nodes > 1`` the cluster's
launcher sets ``MASTER_ADDR``, ``MASTER_PORT`` and ``NODE_RANK`` as for `vpr train`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap

from vpr.locate import storage
from vpr.locate.index import LocationIndex
from vpr.locate.model_source import _extract, _model_identity, load_any_model, resolve_device
from vpr.locate.records import _image_paths
from vpr.locate.versions import DEFAULT_LOCK_TIMEOUT, LocationIndexError

logger = logging.getLogger(__name__)

def shard_bounds(rows: int, world_size: int, rank: int) -> tuple[int, int]:
    """The contiguous ``[start, end)`` rows of ``rank``: sizes differ by at most one."""
    base, extra = divmod(rows, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def _accelerator(device: str) -> str:
    if device == "auto":
        return "auto"
    return "cpu" if device.startswith("cpu") else "gpu" if device.startswith("cuda") else device


def describe_on_ranks(fabric: Any, module: Any, paths: Sequence[Path], meta: dict[str, Any],
                      out_path: Path | None, batch_size: int, num_workers: int,
                      precision: str | None, progress: bool) -> np.ndarray | None:
    """Every rank describes its shard into rank 0's ``out_path``; rank 0 gets the array.

    Called by all ranks at once (``out_path`` is rank 0's; the others pass None).
    """
    out_path = Path(fabric.broadcast(str(out_path) if fabric.global_rank == 0 else None,
                                     src=0))
    # A `VPRModule` keeps its model in .model; an `OnnxExtractor` (--runtime onnx) is one.
    dim = int(getattr(module, "model", module).descriptors_dim)
    if fabric.global_rank == 0:
        open_memmap(out_path, mode="w+", dtype=np.float32, shape=(len(paths), dim)).flush()
    fabric.barrier()
    start, end = shard_bounds(len(paths), fabric.world_size, fabric.global_rank)
    logger.info("rank %d of %d: describing images %d to %d", fabric.global_rank,
                fabric.world_size, start, end - 1)
    if end > start:
        # Straight into this rank's rows of the shared file: no copy of the shard in memory.
        rows = open_memmap(out_path, mode="r+")
        _extract(module, paths[start:end], meta, None, batch_size, num_workers,
                 str(fabric.device), precision, progress and fabric.global_rank == 0,
                 into=rows[start:end])
        rows.flush()
        del rows
    fabric.barrier()
    return np.load(out_path, mmap_mode="r") if fabric.global_rank == 0 else None


def build_on_devices(
    out: str | Path,
    ckpt_path: str | Path | None,
    database: str | Path | Sequence[str | Path],
    devices: int,
    num_nodes: int = 1,
    device: str = "auto",
    index_type: str = "flat",
    batch_size: int = 32,
    num_workers: int = 0,
    precision: str | None = "auto",
    overwrite: bool = False,
    progress: bool = False,
    index_options: dict[str, Any] | None = None,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    model: str | None = None,
    weights: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    runtime: Any = None,
) -> LocationIndex | None:
    """`LocationIndex.build` with the descriptors computed by ``devices x num_nodes`` ranks.

    Args:
        devices: processes per machine (GPUs, or CPU processes).
        num_nodes: machines.
        device: ``cpu``, ``cuda`` or ``auto``: the kind of device each rank uses.
        other arguments: as in `LocationIndex.build` (a checkpoint, or a published
            ``model`` with its ``weights``; ``runtime``: torch or an exported ONNX model,
            the same on every rank).

    Returns:
        The index on rank 0; None on the other ranks.
    """
    if devices < 1 or num_nodes < 1:
        raise ValueError(f"devices and num_nodes must be >= 1, got {devices} and "
                         f"{num_nodes}")
    options = dict(index_type=index_type, batch_size=batch_size, num_workers=num_workers,
                   device=device, precision=precision, overwrite=overwrite, progress=progress,
                   index_options=index_options, lock_timeout=lock_timeout, model=model,
                   weights=weights, image_size=image_size, runtime=runtime)
    if devices * num_nodes == 1:
        return LocationIndex.build(out, ckpt_path, database, **options)
    # Checked on every rank before any waits for another: an error stops all of them.
    if storage.is_index(Path(out)) and not overwrite:
        raise LocationIndexError(f"{out} already exists; set overwrite to replace it")
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator=_accelerator(device), devices=devices, num_nodes=num_nodes,
                    strategy="ddp")
    fabric.launch()

    def describe(module, paths, meta, out_path):
        return describe_on_ranks(fabric, module, paths, meta, out_path, batch_size,
                                 num_workers, precision, progress)

    if fabric.global_rank == 0:
        index = LocationIndex.build(out, ckpt_path, database, describe=describe, **options)
        fabric.barrier()
        return index
    published = None if model is None else {"model": model, "weights": weights,
                                            "image_size": image_size}
    from vpr.export.runtime import extractor_for_build

    checkpoint = Path(ckpt_path) if ckpt_path else None
    module, hparams, weights_record, _ = load_any_model(checkpoint, published)
    # The extractor and image size rank 0 chose (`LocationIndex._build_locked`): all ranks
    # describe their shard with the same runtime at the same size.
    meta = {"model": _model_identity(checkpoint, hparams, module.model.descriptors_dim,
                                     weights_record)}
    module, _ = extractor_for_build(runtime, module, meta["model"], resolve_device(device))
    describe(module, _image_paths(database), meta, None)
    fabric.barrier()
    return None
