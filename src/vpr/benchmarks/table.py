"""The standard table (rows: models; columns: R@N per benchmark) as markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BenchmarkTable:
    """Recall@N of each model on each benchmark, with what each benchmark measured."""

    benchmarks: list[str]
    recall_values: dict[str, tuple[int, ...]]
    models: list[str]
    recalls: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    protocols: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_identities: dict[str, str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    def columns(self) -> list[tuple[str, int]]:
        return [(name, n) for name in self.benchmarks for n in self.recall_values[name]]

    def cell(self, model: str, benchmark: str, n: int) -> float | None:
        return self.recalls.get(model, {}).get(benchmark, {}).get(n)

    def to_markdown(self) -> str:
        columns = self.columns()
        header = "| model | " + " | ".join(f"{name} R@{n}" for name, n in columns) + " |"
        lines = [header, "|" + " --- |" * (len(columns) + 1)]
        for model in self.models:
            cells = [_format(self.cell(model, name, n)) for name, n in columns]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
        for name in self.benchmarks:
            info = self.protocols.get(name, {})
            sizes = sorted({"x".join(map(str, size)) if isinstance(size, list) else str(size)
                            for size in (info.get("image_size") or {}).values()})
            lines.append(f"- {name} ({info.get('title', name)}): {info.get('database_num')} "
                         "database, "
                         f"{info.get('queries_num')} queries, positives "
                         f"{info.get('positives')}, images {', '.join(sizes) or 'native'}"
                         f", file list sha256 {str(info.get('file_list_sha256', ''))[:12]}")
        lines += [f"- left out: {item}" for item in self.left_out]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = self.columns()
        writer.writerow(["model"] + [f"{name} R@{n}" for name, n in columns])
        for model in self.models:
            writer.writerow([model] + [_format(self.cell(model, name, n)) for name, n in columns])
        return buffer.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmarks": self.benchmarks,
            "models": {model: self.model_identities.get(model, "") for model in self.models},
            "recalls": {model: {name: {str(n): value for n, value in values.items()}
                                for name, values in by_benchmark.items()}
                        for model, by_benchmark in self.recalls.items()},
            "protocols": self.protocols,
            "left_out": self.left_out,
        }


def _format(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
