"""Recall@N of an exported model on a test set, to see what int8 costs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from vpr.export.parity import describe, normalise


def recall_of(run: Callable[[torch.Tensor], torch.Tensor], test_path: str | Path,
              image_size: tuple[int, int], mean: Sequence[float], std: Sequence[float],
              n_values: Sequence[int] = (1, 5), batch_size: int = 16) -> dict[int, float]:
    """Recall@N (percent) of the descriptors ``run`` computes for a test set.

    Args:
        run: float images -> descriptors (eager model, ONNX Runtime, ...).
        test_path: a folder with ``database/`` and ``queries/`` (as `vpr test` reads).
        image_size: (H, W) images are read at.
        mean, std: the model's normalisation.
        n_values: the N of Recall@N.
        batch_size: images per call of ``run``.
    """
    from vpr.data.datasets import RetrievalSet
    from vpr.eval.metrics import recall_at_n
    from vpr.eval.search import search
    from vpr.inputs.decode import UInt8Reader

    dataset = RetrievalSet(test_path, transform=None, reader=UInt8Reader(image_size))
    descriptors = []
    for start in range(0, len(dataset), batch_size):
        stop = min(start + batch_size, len(dataset))
        images = torch.stack([dataset[item][0] for item in range(start, stop)])
        descriptors.append(describe(run, normalise(images, mean, std), batch_size))
    import numpy as np

    everything = np.concatenate(descriptors)
    database, queries = everything[: dataset.database_num], everything[dataset.database_num :]
    _, predictions = search(database, queries, max(n_values))
    return recall_at_n(predictions, dataset.positives_per_query, n_values)
