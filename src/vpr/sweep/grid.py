"""Sweep grids: a YAML file of shared `vpr train` flags and the values to vary.

A grid file::

    name: table1                      # optional; default: the file name
    base:                             # `vpr train` flags shared by every run
      train_path: data/gsv_xs/train
      test_path: [data/sf_xs/test, data/tokyo_xs/test]
      max_epochs: 20
    grid:                             # flag -> values; every combination is one cell
      loss_name: [ContrastiveLoss, MultiSimilarityLoss]
      agg_arch: [avgpool, ConvAP]
    seeds: [0]                        # optional; `vpr sweep --seeds` overrides it
    paper: {...}                      # optional published numbers, for `vpr report --compare`

``grid`` may also be a list of such dicts: the cells are the union of their products (for
tables that are not a full product). Keys are the settings of `vpr.config` (the `vpr train`
flag names without the dashes); each run is a call of `vpr.training.run.train` with its
settings, checked against the schema before any run starts.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from vpr.config import FIELDS, canonical_key, check_values
from vpr.config.fields import option_of

# Flags the sweep sets itself for every run.
RESERVED_KEYS = ("exp_name", "log_dir", "seed", "resume")
# Flags that do not change the results: a finished run may differ from the plan in them.
OPERATIONAL_KEYS = ("num_workers", "progress_bar", "no_progress_bar", "eval_batch_size")
TOP_LEVEL_KEYS = ("name", "description", "base", "grid", "seeds", "paper")
# Longest run folder name before it is shortened with a hash.
MAX_NAME_LENGTH = 120


class GridError(ValueError):
    """The grid file is wrong: the message says where."""


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a cell of the grid and a seed.

    Attributes:
        exp_name: the run's folder name, derived from the cell values and the seed.
        cell: the varied flags of this run (grid key -> value).
        seed: the random seed.
        settings: every flag of the run but the seed (base updated with the cell).
    """

    exp_name: str
    cell: dict[str, Any]
    seed: int
    settings: dict[str, Any]

    def train_settings(self, log_dir: str | Path) -> dict[str, Any]:
        """The settings of this run: the grid's, its name, folder and seed."""
        return {**self.settings, "exp_name": self.exp_name, "log_dir": str(log_dir),
                "seed": self.seed}

    def train_argv(self, log_dir: str | Path, resume: str | Path | None = None) -> list[str]:
        """The `vpr train` command line that makes this run by hand (shown, never parsed)."""
        argv = ["train"]
        for key, value in self.train_settings(log_dir).items():
            argv += flag_argv(key, value)
        if resume is not None:
            argv += ["--resume", str(resume)]
        return argv

    def comparable_settings(self) -> dict[str, Any]:
        """The settings that decide the results (operational flags left out), as JSON data."""
        return comparable(self.settings)


@dataclass
class Grid:
    """A parsed grid file.

    Attributes:
        name: the sweep's name (default folder: sweeps/<name>).
        base: flags shared by every run.
        cells: the expanded cells, in order.
        keys: the varied flags, in the order they first appear.
        seeds: the seeds each cell is run with.
        paper: the published numbers (``paper:`` section), or None.
        description: free text from the file.
        source: the file it was read from, if any.
    """

    name: str
    base: dict[str, Any]
    cells: list[dict[str, Any]]
    keys: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    paper: dict[str, Any] | None = None
    description: str = ""
    source: Path | None = None

    def runs(self) -> list[RunSpec]:
        """Every (cell, seed) run, cells in order, seeds innermost, with unique names."""
        runs = []
        for cell in self.cells:
            for seed in self.seeds:
                runs.append(RunSpec(exp_name=exp_name_for(cell, seed), cell=dict(cell),
                                    seed=seed, settings={**self.base, **cell}))
        return _unique_names(runs)

    def to_dict(self) -> dict[str, Any]:
        """The grid as a YAML-ready dict (cells listed explicitly), for the sweep folder."""
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        data["base"] = self.base
        data["grid"] = [{key: [value] for key, value in cell.items()} for cell in self.cells]
        data["seeds"] = list(self.seeds)
        if self.paper:
            data["paper"] = self.paper
        return data


def normalize_key(key: Any) -> str:
    """``--loss-name`` -> ``loss_name`` (flag spellings such as ``agg_option`` are kept: run
    names are made of the keys as the grid writes them)."""
    return str(key).strip().lstrip("-").replace("-", "_")


def comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as plain JSON data, without the flags that do not change results."""
    data = json.loads(json.dumps(settings, default=str))
    return {key: value for key, value in data.items() if key not in OPERATIONAL_KEYS}


def load_grid(path: str | Path, seeds: list[int] | None = None,
              overrides: dict[str, Any] | None = None) -> Grid:
    """Reads and checks a grid file.

    Args:
        path: the YAML file.
        seeds: replaces the file's ``seeds`` when given.
        overrides: flags that replace (or add to) the file's ``base`` for every run.

    Raises:
        GridError: the file is not a valid grid; FileNotFoundError if it is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: grid file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise GridError(f"{path}: not valid YAML: {error}") from None
    grid = parse_grid(data, default_name=path.stem, where=str(path))
    grid.source = path
    if seeds:
        grid.seeds = list(seeds)
    if overrides:
        checked = _checked_flags(overrides, "--set")
        varied = [key for key in checked if key in grid.keys]
        if varied:
            raise GridError(f"--set {', '.join(varied)}: varied by the grid; edit the grid file")
        grid.base.update(checked)
    return grid


def parse_grid(data: Any, default_name: str = "sweep", where: str = "grid") -> Grid:
    """Builds a Grid from the loaded YAML data; ``where`` names the source in errors."""
    if not isinstance(data, dict):
        raise GridError(f"{where}: expected a mapping with base: and grid:")
    unknown = [key for key in data if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise GridError(f"{where}: unknown section(s) {', '.join(map(str, unknown))}; "
                        f"expected {', '.join(TOP_LEVEL_KEYS)}")
    if "grid" not in data:
        raise GridError(f"{where}: no grid: section (flag -> list of values)")
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise GridError(f"{where}: base: must be a mapping of flag -> value")
    base = _checked_flags(base, f"{where}: base")
    subgrids = data["grid"] if isinstance(data["grid"], list) else [data["grid"]]
    cells: list[dict[str, Any]] = []
    keys: list[str] = []
    for index, subgrid in enumerate(subgrids):
        label = f"{where}: grid" + (f"[{index}]" if isinstance(data["grid"], list) else "")
        for cell in expand(subgrid, label):
            for key in cell:
                if key not in keys:
                    keys.append(key)
            if cell not in cells:  # overlapping sub-grids run a cell once
                cells.append(cell)
    if not cells:
        raise GridError(f"{where}: the grid has no cells")
    overlap = [key for key in keys if key in base]
    if overlap:
        raise GridError(f"{where}: {', '.join(overlap)} both in base: and grid:; keep it in one")
    seeds = data.get("seeds", [0])
    seeds = [seeds] if isinstance(seeds, int) else seeds
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise GridError(f"{where}: seeds: must be a list of integers")
    paper = data.get("paper")
    if paper is not None and not isinstance(paper, dict):
        raise GridError(f"{where}: paper: must be a mapping (see docs/EXPERIMENTS.md)")
    name = str(data.get("name") or default_name)
    return Grid(name=name, base=base, cells=cells, keys=keys, seeds=list(dict.fromkeys(seeds)),
                paper=paper, description=str(data.get("description") or "").strip())


def expand(subgrid: Any, where: str = "grid") -> list[dict[str, Any]]:
    """The cartesian product of a ``{flag: [values]}`` mapping, first flag outermost.

    A value that is not a list is a single value.
    """
    if not isinstance(subgrid, dict) or not subgrid:
        raise GridError(f"{where}: expected a non-empty mapping of flag -> list of values")
    flags = _checked_flags(subgrid, where)
    choices = []
    for key, values in flags.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise GridError(f"{where}: {key} has an empty list of values")
        choices.append(values)
    return [dict(zip(flags, combination)) for combination in product(*choices)]


def _checked_flags(flags: dict[Any, Any], where: str) -> dict[str, Any]:
    """Normalizes the keys of ``flags`` and checks they are settings of `vpr train`."""
    checked: dict[str, Any] = {}
    for raw_key, value in flags.items():
        key = normalize_key(raw_key)
        if key in RESERVED_KEYS:
            hint = "use --seeds or seeds:" if key == "seed" else "the sweep sets it for each run"
            raise GridError(f"{where}: {key} cannot be set here ({hint})")
        if canonical_key(key) not in FIELDS:
            close = difflib.get_close_matches(key, list(FIELDS), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise GridError(f"{where}: {raw_key!r} is not a `vpr train` setting{hint}")
        checked[key] = value
    return checked


def flag_argv(key: str, value: Any) -> list[str]:
    """The command-line words of one setting: ``("max_epochs", 2)`` -> ``["--max_epochs", "2"]``.

    A switch gives ``--flag`` or ``--no-flag``, ``None`` nothing; a list gives several values;
    a mapping (``agg_options`` and the like) gives one ``--flag KEY=VALUE`` per item.
    """
    key = canonical_key(key)
    meta = option_of(FIELDS[key][1]) if key in FIELDS else None
    flag = f"--{(meta.flag if meta else None) or key}"
    if value is None:
        return []
    if meta is not None and meta.kind == "switch":
        return [flag] if value else [f"--no-{key}"]
    if isinstance(value, dict):
        items = [f"{name}={_word(item)}" for name, item in value.items()]
        return [word for item in items for word in (flag, item)]
    if isinstance(value, list | tuple):
        return [flag, *(_word(item) for item in value)]
    return [flag, _word(value)]


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def slug(value: Any) -> str:
    """A short, filesystem-safe text for a flag value (paths keep their last two parts)."""
    if isinstance(value, dict):
        text = "+".join(f"{key}-{slug(item)}" for key, item in value.items())
    elif isinstance(value, list | tuple):
        text = "+".join(slug(item) for item in value)
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, str) and ("/" in value or "\\" in value):
        text = "-".join(Path(value.replace("\\", "/")).parts[-2:])
    else:
        text = str(value)
    text = re.sub(r"[^A-Za-z0-9._+-]+", "-", text)
    # "__" separates the flags of a run name: never inside a value.
    return re.sub(r"_{2,}", "_", text).strip("-._") or "x"


def exp_name_for(cell: dict[str, Any], seed: int) -> str:
    """The run folder name of a cell and seed: ``loss_name-FastAPLoss__agg_arch-ConvAP__seed-0``.

    Only letters, digits and ``. + - _`` appear; a name longer than MAX_NAME_LENGTH is cut
    and ends with a hash of the full cell, so it stays unique.
    """
    parts = [f"{key}-{slug(value)}" for key, value in cell.items()]
    name = "__".join([*parts, f"seed-{seed}"])
    if len(name) > MAX_NAME_LENGTH:
        name = f"{name[:MAX_NAME_LENGTH - 20]}__{cell_hash(cell)}__seed-{seed}"
    return name


def cell_hash(cell: dict[str, Any]) -> str:
    """Eight hex digits identifying a cell's values."""
    text = json.dumps(cell, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _unique_names(runs: list[RunSpec]) -> list[RunSpec]:
    """Adds a hash of the cell to names that two different cells would share."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.exp_name] = counts.get(run.exp_name, 0) + 1
    unique = []
    for run in runs:
        if counts[run.exp_name] > 1:
            name = run.exp_name.replace(f"__seed-{run.seed}",
                                        f"__{cell_hash(run.cell)}__seed-{run.seed}")
            run = RunSpec(exp_name=name, cell=run.cell, seed=run.seed, settings=run.settings)
        unique.append(run)
    return unique


def validate(runs: list[RunSpec], log_dir: str | Path) -> None:
    """Checks every run's settings, so a bad value stops the sweep before it starts.

    Raises:
        GridError: naming the first run whose settings the schema rejects.
    """
    for run in runs:
        try:
            check_values(run.train_settings(log_dir), "settings")
        except ValueError as error:
            raise GridError(f"run {run.exp_name}: {error}") from None
