"""`vpr report`: a sweep's results as a paper-style markdown table, CSV files and a bar chart."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpr.sweep.grid import OPERATIONAL_KEYS
from vpr.sweep.results import Row, SweepResults, collect, paper_value
from vpr.utils.atomic import write_bytes_atomic

# Column titles of the usual grid keys, as the paper's tables name them.
KEY_TITLES = {
    "loss_name": "Loss",
    "agg_arch": "Aggregator",
    "miner_name": "Miner",
    "backbone": "Backbone",
    "descriptors_dim": "Dim",
    "image_size": "Image size",
    "max_epochs": "Epochs",
    "lr": "LR",
    "optimizer": "Optimizer",
    "batch_size": "Batch",
}
# Flags left out of the "shared settings" line: paths are listed with the test sets.
UNSHOWN_SETTINGS = ("train_path", "val_path", "test_path", *OPERATIONAL_KEYS)
MISSING = "—"


@dataclass
class ReportFiles:
    """What `write_report` wrote, and the markdown text."""

    markdown: Path
    results_csv: Path
    runs_csv: Path
    chart: Path | None
    text: str


def write_report(sweep_dir: str | Path, out_dir: str | Path | None = None,
                 compare: bool = False, recalls: tuple[str, ...] = ("R@1", "R@5"),
                 paper: dict[str, Any] | None = None) -> ReportFiles:
    """Writes report.md, results.csv, runs.csv and recalls.png for a sweep folder.

    Args:
        sweep_dir: the sweep folder.
        out_dir: where to write (default: ``<sweep_dir>/report``).
        compare: put the published numbers (the grid's ``paper:`` section) beside ours.
        recalls: which Recall@N to show, e.g. ("R@1", "R@5").
        paper: published numbers to use instead of the saved grid's.

    Raises:
        SweepError: no sweep in ``sweep_dir``; ValueError: ``compare`` without numbers.
    """
    results = collect(sweep_dir)
    if paper is not None:
        results.paper = paper
    if compare and not results.paper:
        raise ValueError(f"{sweep_dir}: --compare needs published numbers: a paper: section "
                         "in the grid file (see configs/paper/table1.yaml)")
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    text = markdown_table(results, recalls, compare)
    files = ReportFiles(markdown=out / "report.md", results_csv=out / "results.csv",
                        runs_csv=out / "runs.csv", chart=None, text=text)
    write_bytes_atomic(files.markdown, text.encode())
    write_bytes_atomic(files.results_csv, results_csv(results, recalls, compare).encode())
    write_bytes_atomic(files.runs_csv, runs_csv(results, recalls).encode())
    from vpr.sweep.plot import plot_recalls

    files.chart = plot_recalls(results, recalls, out / "recalls.png", compare)
    return files


def markdown_table(results: SweepResults, recalls: tuple[str, ...] = ("R@1", "R@5"),
                   compare: bool = False) -> str:
    """The report: a title, the settings, one table row per cell, then any failures."""
    columns, rows = results.rows(recalls)
    several = len(results.seeds) > 1 or any(row.planned > 1 for row in rows)
    header = [KEY_TITLES.get(key, key) for key in results.keys]
    for label, recall in columns:
        header.append(f"{label} {recall}")
        if compare:
            header.append(f"{label} {recall} (paper)")
    if several:  # finished / planned seeds per row
        header.append("runs")
    lines = [f"# {results.name}", "", _summary_line(results, several), ""]
    shared = _shared_settings(results.base)
    if shared:
        lines += [f"Shared settings: {shared}", ""]
    if results.datasets:
        labels = results.labels()
        lines += ["Test sets: " + "; ".join(f"{labels[path]} = `{path}`"
                                             for path in results.datasets), ""]
    align = ["---"] * len(results.keys) + ["---:"] * (len(header) - len(results.keys))
    lines += [_md_row(header), _md_row(align)]
    for row in rows:
        cells = [_show(row.cell.get(key, _base_value(results, key))) for key in results.keys]
        for column in columns:
            cells.append(_format(row, column))
            if compare:
                value = paper_value(results.paper, row.cell, *column)
                cells.append(MISSING if value is None else f"{value:.1f}")
        if several:
            cells.append(f"{row.done}/{row.planned}")
        lines.append(_md_row(cells))
    failures = [run for run in results.runs if run.status == "failed"]
    if failures:
        lines += ["", "Failed runs:", ""]
        lines += [f"- `{run.exp_name}`: {run.error or 'no message recorded'}" for run in failures]
    if compare and results.paper:
        source = results.paper.get("source", "the paper")
        note = results.paper.get("note", "")
        lines += ["", f"Paper numbers: {source}." + (f" {note}" if note else "")]
    return "\n".join(lines) + "\n"


def _summary_line(results: SweepResults, several: bool) -> str:
    counts: dict[str, int] = {}
    for run in results.runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    parts = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    seeds = ", ".join(str(seed) for seed in results.seeds)
    what = ("Recall@N (%), mean ± sample standard deviation over seeds" if several
            else "Recall@N (%)")
    return f"Runs: {parts}; seeds: {seeds}. Values: {what}."


def _format(row: Row, column: tuple[str, str]) -> str:
    mean = row.mean(column)
    if mean is None:
        return "failed" if row.failed and row.failed == row.planned else MISSING
    std = row.std(column)
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def _shared_settings(base: dict[str, Any]) -> str:
    return ", ".join(f"{key}={_show(value)}" for key, value in base.items()
                     if key not in UNSHOWN_SETTINGS)


def _base_value(results: SweepResults, key: str) -> Any:
    return results.base.get(key, "default")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{key}={_show(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return " ".join(_show(item) for item in value)
    return str(value)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def results_csv(results: SweepResults, recalls: tuple[str, ...] = ("R@1", "R@5"),
                compare: bool = False) -> str:
    """One line per cell: its flags, runs done/planned, and mean, std (and paper) per column."""
    columns, rows = results.rows(recalls)
    header = [*results.keys, "runs_done", "runs_planned"]
    for label, recall in columns:
        header += [f"{label} {recall} mean", f"{label} {recall} std"]
        if compare:
            header.append(f"{label} {recall} paper")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        line: list[Any] = [_show(row.cell.get(key, _base_value(results, key)))
                           for key in results.keys]
        line += [row.done, row.planned]
        for column in columns:
            line += [_number(row.mean(column)), _number(row.std(column))]
            if compare:
                line.append(_number(paper_value(results.paper, row.cell, *column)))
        writer.writerow(line)
    return buffer.getvalue()


def runs_csv(results: SweepResults, recalls: tuple[str, ...] = ("R@1", "R@5")) -> str:
    """One line per run (each seed): its flags, seed, status, error and recalls."""
    labels = results.labels()
    header = ["exp_name", *results.keys, "seed", "status", "error"]
    header += [f"{labels[dataset]} {recall}" for dataset in results.datasets for recall in recalls]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for run in results.runs:
        line: list[Any] = [run.exp_name]
        line += [_show(run.cell.get(key, _base_value(results, key))) for key in results.keys]
        line += [run.seed, run.status, run.error or ""]
        for dataset in results.datasets:
            for recall in recalls:
                line.append(_number(run.recalls.get(dataset, {}).get(recall)))
        writer.writerow(line)
    return buffer.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
