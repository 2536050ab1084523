"""Recall@N of an exported model on a test set, to see what int8 costs.

The descriptors come from `vpr.eval.extract.extract_descriptors` and the recalls from
`vpr.eval.evaluate.evaluate_set`, as for `vpr test`: only the runner differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vpr.inputs.batch_augment import InputTransform


class RunnerModel(nn.Module):
    """A runner (float images -> descriptors: ONNX Runtime, TorchScript...) as a model
    `extract_descriptors` can use, with the normalisation it expects."""

    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor], mean: Sequence[float],
                 std: Sequence[float]) -> None:
        super().__init__()
        self.run = run
        self.input_transform = InputTransform(mean=tuple(mean), std=tuple(std))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.asarray(self.run(images), np.float32))


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
    from vpr.config.schema import EvalConfig
    from vpr.data.datasets import RetrievalSet
    from vpr.eval.evaluate import evaluate_set
    from vpr.eval.extract import extract_descriptors
    from vpr.inputs.decode import UInt8Reader

    dataset = RetrievalSet(test_path, transform=None, reader=UInt8Reader(image_size))
    descriptors = extract_descriptors(RunnerModel(run, mean, std), dataset,
                                      batch_size=batch_size, device="cpu",
                                      precision="32-true", progress=False)
    settings = EvalConfig(recall_values=tuple(sorted(set(n_values))), group_rule="none")
    result = evaluate_set(dataset, descriptors, settings)
    return {n: result["recalls"][f"R@{n}"] for n in n_values}
