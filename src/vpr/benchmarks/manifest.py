"""Benchmark protocols shipped with the package (``manifests/<name>.yaml``), by exact name.

A manifest pins what a published number measured: which images are database and queries,
how many, what a positive is (metres, a frame window, or a published list), the image size
the papers used, the R@N values, and where each choice comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

POSITIVE_RULES = ("metres", "frames", "list")


@dataclass(frozen=True)
class Manifest:
    """One benchmark protocol (see the YAML files for the meaning of each field)."""

    name: str
    title: str
    converter: str | None
    access: str
    obtain: str
    database: str
    queries: str
    positives: dict[str, Any]
    recall_values: tuple[int, ...]
    image_size: tuple[int, int] | None = None
    image_size_source: str = ""
    database_num: int | None = None
    queries_num: int | None = None
    reported_counts: str = ""
    query_list_sha256: str | None = None
    file_list_sha256: str | None = None
    sources: tuple[str, ...] = field(default_factory=tuple)

    @property
    def positive_rule(self) -> str:
        """``metres``, ``frames`` or ``list``."""
        return str(self.positives["rule"])

    @property
    def positive_dist_threshold(self) -> float:
        """The distance of a positive in metres (25 for the rules that are not metres)."""
        return float(self.positives["value"]) if self.positive_rule == "metres" else 25.0

    @property
    def needs_ground_truth_file(self) -> bool:
        """Whether positives come from ``ground_truth.json`` rather than the @-names."""
        return self.positive_rule != "metres"

    def describe_positives(self) -> str:
        """The positive rule in a few words, e.g. "25 m" or "+-10 frames"."""
        value = self.positives["value"]
        return {"metres": f"{value} m", "frames": f"+-{value} frames"}.get(
            self.positive_rule, f"list {value}")


def _from_dict(data: dict[str, Any], source: str) -> Manifest:
    known = set(Manifest.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown manifest fields {', '.join(unknown)}")
    if data.get("positives", {}).get("rule") not in POSITIVE_RULES:
        raise ValueError(f"{source}: positives.rule must be one of {', '.join(POSITIVE_RULES)}")
    values = dict(data)
    values["recall_values"] = tuple(int(n) for n in data["recall_values"])
    values["sources"] = tuple(data.get("sources") or ())
    if data.get("image_size"):
        values["image_size"] = tuple(int(side) for side in data["image_size"])
    return Manifest(**values)


def _files() -> dict[str, Any]:
    folder = resources.files("vpr.benchmarks") / "manifests"
    return {entry.name[: -len(".yaml")]: entry for entry in folder.iterdir()
            if entry.name.endswith(".yaml")}


def list_manifests() -> list[str]:
    """Every protocol name, sorted."""
    return sorted(_files())


def load_manifest(name: str) -> Manifest:
    """The protocol of exact ``name``; an unknown name is an error listing the valid ones."""
    files = _files()
    if name not in files:
        raise ValueError(f"unknown benchmark {name!r}; valid: {', '.join(sorted(files))}")
    data = yaml.safe_load(files[name].read_text())
    if data.get("name") != name:
        raise ValueError(f"manifests/{name}.yaml names itself {data.get('name')!r}")
    return _from_dict(data, f"manifests/{name}.yaml")
