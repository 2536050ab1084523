"""`vpr benchmark`: every model on every protocol, one standard table.

Each dataset is checked against its manifest before any descriptor is computed. Descriptors
are cached per model identity (hash of its weights), protocol, file list hash and image
size, so a second table over the same models and data reads them back instead of
recomputing them. Extraction is `vpr.eval.extract.extract_descriptors` and search, re-ranking
and Recall@N are `vpr.eval.evaluate.evaluate_set`, as for `vpr test`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vpr.benchmarks.check import DatasetCheck, check_against_manifest
from vpr.benchmarks.manifest import Manifest, load_manifest
from vpr.benchmarks.models import BenchmarkModel
from vpr.benchmarks.table import BenchmarkTable
from vpr.config.schema import EvalConfig
from vpr.data.datasets import RetrievalSet
from vpr.eval.evaluate import evaluate_set
from vpr.eval.extract import extract_descriptors
from vpr.inputs.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from vpr.utils.atomic import write_bytes_atomic, write_json_atomic

logger = logging.getLogger(__name__)

IMAGE_SIZE_CHOICES = ("model", "manifest")


class BenchmarkError(ValueError):
    """Benchmark data that does not match its protocol, or a request that cannot run."""


def check_datasets(data: dict[str, Path], allow_partial: bool
                   ) -> tuple[dict[str, Manifest], dict[str, DatasetCheck], list[str]]:
    """Loads each manifest and checks each folder; returns the usable ones and what was left out.

    Raises:
        BenchmarkError: some folder differs from its manifest and ``allow_partial`` is False
            (every difference is listed).
    """
    manifests = {name: load_manifest(name) for name in data}
    checks = {name: check_against_manifest(manifests[name], root) for name, root in data.items()}
    problems = [f"{name}: {problem}" for name, check in checks.items()
                for problem in check.problems]
    if problems and not allow_partial:
        raise BenchmarkError(
            "the data differ from their protocols (nothing was run): " + "; ".join(problems)
            + ". Fix the folders (vpr data convert), or pass --allow_partial to leave those "
            "benchmarks out"
        )
    usable = {name: check for name, check in checks.items() if check.ok}
    return manifests, usable, problems


def model_transform(model: BenchmarkModel, size: tuple[int, int] | None):
    """The evaluation transform at ``size`` with the model's own normalisation."""
    if (tuple(model.mean), tuple(model.std)) == (IMAGENET_MEAN, IMAGENET_STD):
        return eval_transform(size)
    from torchvision.transforms import v2

    resize = [] if size is None else [v2.Resize(size, antialias=True)]
    return v2.Compose([v2.ToImage(), *resize, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(model.mean, model.std)])


def _cache_path(cache_dir: Path, model: BenchmarkModel, check: DatasetCheck,
                size: tuple[int, int] | None) -> Path:
    size_text = "native" if size is None else f"{size[0]}x{size[1]}"
    return (cache_dir / model.identity[:40] /
            f"{check.name}-{check.file_list_sha256[:16]}-{size_text}.npy")


def descriptors_for(model: BenchmarkModel, dataset: RetrievalSet, cache_path: Path | None,
                    batch_size: int, num_workers: int, device: str, precision: str | None,
                    progress: bool) -> np.ndarray:
    """The descriptors of every image of ``dataset``, read from the cache when there."""
    if cache_path is not None and cache_path.is_file():
        cached = np.load(cache_path, mmap_mode="r")
        if cached.shape[0] == len(dataset):
            logger.info("Descriptors from the cache: %s", cache_path)
            return cached
    return extract_descriptors(model.module, dataset, out_path=cache_path,
                               batch_size=batch_size, num_workers=num_workers, device=device,
                               precision=precision, progress=progress)


class ProtocolReranker:
    """`vpr.rerank.rerank_retrieval` as the re-ranker `evaluate_set` calls.

    Args:
        module: the VPR model (for the ``backbone`` method).
        settings: re-ranking settings (`vpr.rerank.options.rerank_settings`).
        folder: where the database's local features are cached (None: not kept).
    """

    def __init__(self, module: Any, settings: dict[str, Any], folder: Path | None) -> None:
        self.module = module
        self.settings = settings
        self.folder = folder

    @property
    def candidates_needed(self) -> int:
        return int(self.settings["top_k"])

    def __call__(self, dataset: RetrievalSet, predictions: np.ndarray, distances: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        from vpr.rerank import rerank_retrieval

        # Descriptors are L2-normalised: a squared L2 distance d maps to cosine 1 - d / 2.
        similarities = 1.0 - np.asarray(distances, np.float64) / 2.0
        result = rerank_retrieval(dataset.query_paths, dataset.database_paths, predictions,
                                  similarities, self.settings, self.module, self.folder)
        rows = np.arange(len(predictions))[:, None]
        return (np.asarray(result.candidates), np.asarray(distances)[rows, result.order],
                {"settings": dict(self.settings)})


def run_benchmark(
    models: list[BenchmarkModel],
    data: dict[str, Path],
    out_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    allow_partial: bool = False,
    image_size_from: str = "model",
    batch_size: int = 32,
    num_workers: int = 0,
    device: str = "cpu",
    precision: str | None = None,
    progress: bool = True,
    rerank: dict[str, Any] | None = None,
) -> BenchmarkTable:
    """Evaluates every model on every benchmark and writes ``table.{md,csv,json}``.

    Args:
        models: the models (`vpr.benchmarks.models`), one table row each.
        data: {protocol name: converted test set folder}.
        out_dir: where the table files go (None: not written).
        cache_dir: where descriptors are cached (None: no cache).
        allow_partial: leave out (and report) benchmarks whose folder differs from the
            manifest instead of stopping.
        image_size_from: ``model`` (the size the model was trained/published at) or
            ``manifest`` (the size the papers evaluated at).
        batch_size, num_workers, device, precision: as `vpr.eval.extract.extract_descriptors`.
        progress: show progress bars.
        rerank: re-ranking settings (`vpr.rerank.options.rerank_settings`): the top
            ``rerank["top_k"]`` candidates of each query are verified geometrically and
            reordered before Recall@N; the database's local features are cached beside the
            descriptors. None: global descriptors only.
    """
    if not models:
        raise BenchmarkError("no model to benchmark: give --ckpt_path and/or --model/--weights")
    if not data:
        raise BenchmarkError("no benchmark data: give --data NAME=DIR (see vpr benchmark --list)")
    if image_size_from not in IMAGE_SIZE_CHOICES:
        raise BenchmarkError(f"--image_size_from must be one of {', '.join(IMAGE_SIZE_CHOICES)}")
    manifests, usable, left_out = check_datasets(data, allow_partial)
    names = [name for name in data if name in usable]
    table = BenchmarkTable(
        benchmarks=names,
        recall_values={name: manifests[name].recall_values for name in names},
        models=[model.label for model in models],
        model_identities={model.label: model.identity for model in models},
        left_out=left_out,
    )
    cache = Path(cache_dir) if cache_dir is not None else None
    for name in names:
        manifest, check = manifests[name], usable[name]
        sizes: dict[str, list[int] | str] = {}
        # Listed and checked once per benchmark (every image is opened); only the resize
        # differs between models.
        dataset = RetrievalSet(check.root, None,
                               positive_dist_threshold=manifest.positive_dist_threshold)
        for model in models:
            size = model.image_size if image_size_from == "model" else manifest.image_size
            sizes[model.label] = list(size) if size else "native"
            dataset.transform = model_transform(model, size)
            descriptors = descriptors_for(
                model, dataset,
                _cache_path(cache, model, check, size) if cache is not None else None,
                batch_size, num_workers, device, precision, progress)
            reranker = None
            if rerank:
                folder = None if cache is None else (
                    _cache_path(cache, model, check, size).with_suffix("") / "rerank")
                reranker = ProtocolReranker(model.module, rerank, folder)
            # The protocol's Recall@N at its positives; no groups or extra thresholds.
            settings = EvalConfig(recall_values=tuple(manifest.recall_values),
                                  group_rule="none", dist_thresholds=())
            result = evaluate_set(dataset, np.asarray(descriptors), settings,
                                  reranker=reranker)
            recalls = {n: result["recalls"][f"R@{n}"] for n in manifest.recall_values}
            table.recalls.setdefault(model.label, {})[name] = recalls
            logger.info("%s on %s: %s", model.label, name, recalls)
        table.protocols[name] = {
            "title": manifest.title,
            "folder": str(check.root),
            "database_num": check.database_num,
            "queries_num": check.queries_num,
            "positives": manifest.describe_positives(),
            "file_list_sha256": check.file_list_sha256,
            "image_size": sizes,
            "image_size_from": image_size_from,
            "sources": list(manifest.sources),
            "rerank": dict(rerank) if rerank else None,
        }
    if out_dir is not None:
        write_table(table, Path(out_dir))
    return table


def write_table(table: BenchmarkTable, out_dir: Path) -> dict[str, Path]:
    """Writes ``table.md``, ``table.csv`` and ``table.json`` into ``out_dir``."""
    files = {"markdown": out_dir / "table.md", "csv": out_dir / "table.csv",
             "json": out_dir / "table.json"}
    write_bytes_atomic(files["markdown"], table.to_markdown().encode())
    write_bytes_atomic(files["csv"], table.to_csv().encode())
    write_json_atomic(files["json"], table.to_dict())
    return files
