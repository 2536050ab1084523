"""Settings files: ``vpr train --config run.yaml`` and the ``config.yaml`` saved in each run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vpr.config.schema import flatten


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings of a YAML file, by flat name (not yet checked).

    The file holds settings by section (``model: {agg_arch: GeM}``, as `TrainConfig.to_dict`
    writes them), flat (``agg_arch: GeM``), or is a run's ``config.yaml`` (its ``config:``
    section; runs of vpr 0.1 saved their flags under ``args:``).

    Raises:
        FileNotFoundError, ValueError: the file is missing or is not a mapping of settings.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: settings file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    if "config" in data and isinstance(data["config"], dict):
        data = data["config"]
    elif "args" in data and isinstance(data["args"], dict):  # a vpr 0.1 run's config.yaml
        data = _from_old_args(data["args"])
    return flatten(data, str(path))


def _from_old_args(args: dict[str, Any]) -> dict[str, Any]:
    """The settings of a vpr 0.1 ``config.yaml`` ``args:`` section (argparse's namespace)."""
    from vpr.config.schema import ALIASES, FIELDS

    settings = {}
    for key, value in args.items():
        if value is None or (key not in FIELDS and key not in ALIASES):
            continue  # unset model flags (None), and command-only keys (resume, ckpt_path)
        settings[key] = value
    return settings


def write_settings(path: str | Path, settings: dict[str, Any], **header: Any) -> None:
    """Writes ``header`` items then ``config: settings`` (by section) as YAML."""
    text = yaml.safe_dump({**header, "config": settings}, sort_keys=False)
    Path(path).write_text(text)
