"""Does a converted test set folder match its manifest? Checked before any work."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from vpr.benchmarks.manifest import Manifest
from vpr.data.ground_truth import GROUND_TRUTH_FILE
from vpr.data.images import IMAGE_EXTENSIONS
from vpr.datatools.convert.writer import DATASET_INFO_FILE, file_list_sha256


@dataclass
class DatasetCheck:
    """The counts and identity of a test set folder, and how it departs from its manifest."""

    name: str
    root: Path
    database_num: int = 0
    queries_num: int = 0
    file_list_sha256: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")
                  if path.suffix.lower() in IMAGE_EXTENSIONS)


def check_against_manifest(manifest: Manifest, root: str | Path) -> DatasetCheck:
    """Compares the folder ``root`` with ``manifest``; every difference becomes a problem."""
    root = Path(root)
    check = DatasetCheck(name=manifest.name, root=root)
    for part in ("database", "queries"):
        if not (root / part).is_dir():
            check.problems.append(f"{root / part}: folder not found")
    if check.problems:
        return check
    database, queries = _names(root / "database"), _names(root / "queries")
    check.database_num, check.queries_num = len(database), len(queries)
    check.file_list_sha256 = file_list_sha256(database, queries)
    for what, found, expected in (("database images", len(database), manifest.database_num),
                                  ("queries", len(queries), manifest.queries_num)):
        if expected is not None and found != expected:
            check.problems.append(f"{root}: {found} {what}, the {manifest.name} protocol has "
                                  f"{expected}")
    info_path = root / DATASET_INFO_FILE
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("protocol") != manifest.name:
            check.problems.append(f"{root} was converted for {info.get('protocol')!r}, "
                                  f"not {manifest.name!r}")
        changed = False
        for what, found, key in (("database images", len(database), "database_num"),
                                 ("queries", len(queries), "queries_num")):
            if info.get(key) is not None and found != info[key]:
                changed = True
                check.problems.append(f"{root}: {found} {what} now, {info[key]} when converted "
                                      "(files missing or added since)")
        recorded = info.get("file_list_sha256")
        if not changed and recorded and recorded != check.file_list_sha256:
            check.problems.append(f"{root}: its files were renamed or replaced since the "
                                  "conversion (file list sha256 differs); convert again")
    ground_truth_path = root / GROUND_TRUTH_FILE
    if ground_truth_path.is_file():
        # A window or list written for another protocol (e.g. nordland_2frames data checked
        # as nordland) must not pass even when vpr_dataset.json is gone.
        try:
            written_for = json.loads(ground_truth_path.read_text()).get("protocol")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            written_for = None
            check.problems.append(f"{ground_truth_path}: not a valid ground truth file")
        if written_for is not None and written_for != manifest.name:
            check.problems.append(f"{ground_truth_path} holds the positives of "
                                  f"{written_for!r}, not {manifest.name!r}")
    if manifest.needs_ground_truth_file and not ground_truth_path.is_file():
        check.problems.append(f"{root}: no {GROUND_TRUTH_FILE}; {manifest.name} positives are "
                              f"{manifest.describe_positives()}, written by `vpr data convert "
                              f"{manifest.converter}`")
    if manifest.file_list_sha256 and check.file_list_sha256 != manifest.file_list_sha256:
        check.problems.append(f"{root}: its file list differs from the pinned one (sha256 "
                              f"{check.file_list_sha256[:12]}..., expected "
                              f"{manifest.file_list_sha256[:12]}...)")
    return check
