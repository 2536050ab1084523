"""Gathering a sweep's results: one row per cell, Recall@N per test set over the seeds."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpr.sweep.records import (
    RUNS_FOLDER,
    SweepError,
    read_done,
    read_grid_file,
    read_sweep,
    run_dir,
)

# Name parts written in capitals in test set labels (sf_xs -> SF-XS, tokyo_xs -> Tokyo-XS).
ACRONYMS = {"sf", "xs", "gsv", "msls", "svox", "nyc", "st"}
# Folder names that say which split, not which dataset (data/sf_xs/test -> SF-XS).
SPLIT_NAMES = {"test", "val", "train", "database", "queries", "images"}


@dataclass
class RunResult:
    """One run of a sweep as found on disk.

    Attributes:
        recalls: test set path -> {"R@1": 36.3, ...}; empty unless the run is done.
    """

    exp_name: str
    cell: dict[str, Any]
    seed: int
    status: str
    error: str | None = None
    recalls: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class Row:
    """A cell of the grid with its results over seeds.

    Attributes:
        values: (test set label, "R@1") -> the value of each finished seed.
    """

    cell: dict[str, Any]
    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    done: int = 0
    planned: int = 0
    failed: int = 0

    def mean(self, column: tuple[str, str]) -> float | None:
        """The mean over seeds, or None without any finished seed."""
        values = self.values.get(column) or []
        return statistics.fmean(values) if values else None

    def std(self, column: tuple[str, str]) -> float | None:
        """The sample standard deviation over seeds, or None with fewer than two."""
        values = self.values.get(column) or []
        return statistics.stdev(values) if len(values) > 1 else None


@dataclass
class SweepResults:
    """Everything a report shows about a sweep folder."""

    name: str
    keys: list[str]
    base: dict[str, Any]
    seeds: list[int]
    runs: list[RunResult]
    datasets: list[str]
    paper: dict[str, Any] | None = None

    def labels(self) -> dict[str, str]:
        """Test set path -> its column label (``data/sf_xs/test`` -> ``SF-XS``)."""
        return dataset_labels(self.datasets)

    def rows(self, recalls: tuple[str, ...] = ("R@1", "R@5")) -> tuple[list[tuple[str, str]],
                                                                       list[Row]]:
        """The table: columns (label, recall) and one row per cell, in plan order."""
        labels = self.labels()
        columns = [(labels[dataset], recall) for dataset in self.datasets for recall in recalls]
        rows: dict[str, Row] = {}
        for run in self.runs:
            key = json.dumps(run.cell, sort_keys=True, default=str)
            row = rows.setdefault(key, Row(cell=run.cell))
            row.planned += 1
            row.failed += run.status == "failed"
            if run.status != "done":
                continue
            row.done += 1
            for dataset, values in run.recalls.items():
                for recall in recalls:
                    if recall in values and dataset in labels:
                        row.values.setdefault((labels[dataset], recall), []).append(
                            float(values[recall]))
        return columns, list(rows.values())


def collect(sweep_dir: str | Path) -> SweepResults:
    """Reads a sweep folder: sweep.json, grid.yaml and every run's done.json.

    Runs with a done.json that sweep.json does not list (e.g. copied in by hand) are
    included too.

    Raises:
        SweepError: the folder holds no sweep.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise SweepError(f"{sweep_dir}: no such sweep folder")
    status = read_sweep(sweep_dir) or {}
    grid = read_grid_file(sweep_dir) or {}
    runs: list[RunResult] = []
    listed = set()
    for entry in status.get("runs", []):
        name = entry.get("exp_name")
        if not name:
            continue
        listed.add(name)
        done = read_done(run_dir(sweep_dir, name))
        if done is not None:
            runs.append(_from_done(done, name))
        else:
            state = entry.get("status") or "pending"
            runs.append(RunResult(exp_name=name, cell=entry.get("cell") or {},
                                  seed=int(entry.get("seed", 0)),
                                  status="pending" if state == "done" else state,
                                  error=entry.get("error")))
    for marker in sorted((sweep_dir / RUNS_FOLDER).glob("*/done.json")):
        name = marker.parent.name
        done = read_done(marker.parent)
        if name not in listed and done is not None:
            runs.append(_from_done(done, name))
    if not runs:
        raise SweepError(f"{sweep_dir}: no sweep here (no sweep.json, no "
                         f"{RUNS_FOLDER}/*/done.json); run `vpr sweep --grid FILE --out "
                         f"{sweep_dir}` first")
    keys = list(status.get("keys") or [])
    for run in runs:
        keys += [key for key in run.cell if key not in keys]
    base = status.get("base") or grid.get("base") or {}
    datasets = _dataset_order(base.get("test_path"), runs)
    seeds = status.get("seeds") or sorted({run.seed for run in runs})
    name = status.get("name") or grid.get("name") or sweep_dir.name
    return SweepResults(name=name, keys=keys, base=base, seeds=seeds, runs=runs,
                        datasets=datasets, paper=grid.get("paper"))


def _from_done(done: dict[str, Any], name: str) -> RunResult:
    recalls = {str(test.get("dataset")): dict(test.get("recalls") or {})
               for test in done.get("tests", [])}
    return RunResult(exp_name=done.get("exp_name", name), cell=done.get("cell") or {},
                     seed=int(done.get("seed", 0)), status="done", recalls=recalls)


def _dataset_order(test_path: Any, runs: list[RunResult]) -> list[str]:
    """Test sets in --test_path order, then any other found in results."""
    order = [str(p) for p in (test_path if isinstance(test_path, list) else [test_path]) if p]
    found = [dataset for run in runs for dataset in run.recalls]
    merged: list[str] = []
    for dataset in found:
        same = next((path for path in order if _same_path(path, dataset)), None)
        if same is not None and dataset != same:
            # Results name the set as the run saw it; use that spelling for lookups.
            order[order.index(same)] = dataset
    for dataset in order + found:
        if dataset not in merged:
            merged.append(dataset)
    return merged


def _same_path(first: str, second: str) -> bool:
    return Path(first) == Path(second) or Path(first).resolve() == Path(second).resolve()


def dataset_label(path: str | Path) -> str:
    """A short name for a test set: ``data/sf_xs/test`` -> ``SF-XS``."""
    parts = [part for part in Path(str(path)).parts if part not in ("/", ".", "")]
    if len(parts) >= 2 and parts[-1].lower() in SPLIT_NAMES:
        name = parts[-2]
    else:
        name = parts[-1] if parts else str(path)
    words = [word for word in re.split(r"[_\-\s]+", name) if word]
    return "-".join(word.upper() if word.lower() in ACRONYMS or len(word) <= 2
                    else word[:1].upper() + word[1:] for word in words) or str(path)


def dataset_labels(paths: list[str]) -> dict[str, str]:
    """Labels for several test sets; ``SF-XS val`` / ``SF-XS test`` where two would clash."""
    short = {path: dataset_label(path) for path in paths}
    labels = {}
    for path in paths:
        clashing = [other for other in paths if short[other] == short[path]]
        labels[path] = short[path] if len(clashing) == 1 else f"{short[path]} {Path(path).name}"
    if len(set(labels.values())) < len(labels):
        return {path: str(path) for path in paths}
    return labels


def paper_value(paper: dict[str, Any] | None, cell: dict[str, Any], label: str,
                recall: str) -> float | None:
    """The published number for a cell, test set label and recall, or None.

    The ``paper:`` section lists ``recalls: [R@1, R@5]`` and ``rows:``, each row naming the
    cell's flags and, per test set label, its numbers in ``recalls`` order (or a mapping
    recall -> number).
    """
    if not paper:
        return None
    names = [str(name) for name in paper.get("recalls", ["R@1", "R@5"])]
    for row in paper.get("rows") or []:
        if not all(key in row and _same_value(row[key], value) for key, value in cell.items()):
            continue
        for name, numbers in row.items():
            if str(name).lower() != label.lower():
                continue
            if isinstance(numbers, dict):
                value = numbers.get(recall)
            elif isinstance(numbers, list) and recall in names:
                index = names.index(recall)
                value = numbers[index] if index < len(numbers) else None
            else:
                value = None
            return None if value is None else float(value)
    return None


def _same_value(first: Any, second: Any) -> bool:
    # Component names match case-insensitively, as `vpr train` matches them.
    return str(first).lower() == str(second).lower()
