"""Writing a `ConversionPlan` into an @-format test set folder, resumably.

Images are hard-linked (no copy, no extra space), symlinked where a hard link cannot be
made (another filesystem), or copied with ``copy=True``. A rerun skips every image already
in place after checking that it is the same file (same inode, same link target, or same
size for a copy), so an interrupted conversion resumes where it stopped.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vpr.data.datasets import positives_within
from vpr.data.geotag import format_filename
from vpr.data.ground_truth import GROUND_TRUTH_FILE
from vpr.data.images import apply_orientation, image_orientation
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item
from vpr.utils.atomic import write_json_atomic

DATASET_INFO_FILE = "vpr_dataset.json"


@dataclass
class ConvertReport:
    """What a conversion did and found."""

    out: Path
    protocol: str
    database_num: int
    queries_num: int
    created: int = 0
    already_there: int = 0
    linked_by: dict[str, int] = field(default_factory=dict)
    queries_without_positives: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the terminal."""
        how = ", ".join(f"{count} {kind}" for kind, count in sorted(self.linked_by.items()))
        lines = [
            f"{self.protocol}: {self.database_num} database images, {self.queries_num} queries "
            f"in {self.out}",
            f"  {self.created} placed ({how or 'none'}), {self.already_there} already there "
            "(checked)",
        ]
        lines += [f"  {note}" for note in self.notes]
        missing = self.queries_without_positives
        if missing:
            lines.append(f"  {len(missing)} queries have no positive (they count as misses), "
                         f"e.g. {missing[0]}")
        else:
            lines.append("  every query has at least one positive")
        return "\n".join(lines)


def file_list_sha256(database_names: list[str], query_names: list[str]) -> str:
    """The sha256 of the sorted file lists, one name a line: the identity of a test set."""
    text = "".join(f"database/{name}\n" for name in sorted(database_names))
    text += "".join(f"queries/{name}\n" for name in sorted(query_names))
    return hashlib.sha256(text.encode()).hexdigest()


def _names(items: list[Item], part: str) -> list[str]:
    names = [format_filename(item.tag, item.re_encode_as or item.source.suffix.lower() or ".jpg")
             for item in items]
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise ConvertError(
                f"{items[index].source} and {items[seen[name]].source} would get the same "
                f"{part} name {name}; the raw data lists one image twice"
            )
        seen[name] = index
    return names


def _same_file(source: Path, destination: Path) -> bool:
    if destination.is_symlink():
        return destination.resolve() == source.resolve()
    try:
        if os.path.samefile(source, destination):
            return True
    except OSError:
        return False
    # A copy (--copy): the same size is the check affordable on 100k images.
    return destination.stat().st_size == source.stat().st_size


def _re_encode(source: Path, destination: Path) -> str:
    """Writes ``source`` in the format of ``destination``'s suffix, atomically."""
    from PIL import Image

    temporary = destination.with_name(f".{destination.name}.tmp")
    with Image.open(source) as image:
        # The copy keeps no EXIF: its pixels are stored upright instead.
        upright = apply_orientation(image, image_orientation(image))
        upright.save(temporary, format=Image.registered_extensions()[destination.suffix])
    os.replace(temporary, destination)
    return "re-encoded"


def _place(source: Path, destination: Path, copy: bool) -> str:
    """Puts ``source`` at ``destination``; returns how: 'hard links', 'symlinks', 'copies'."""
    if copy:
        temporary = destination.with_name(f".{destination.name}.tmp")
        shutil.copy2(source, temporary)
        os.replace(temporary, destination)
        return "copies"
    try:
        os.link(source, destination)
        return "hard links"
    except OSError as error:
        # Another filesystem (EXDEV) or one without hard links: a symlink still costs nothing.
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    os.symlink(source.resolve(), destination)
    return "symlinks"


def write_plan(plan: ConversionPlan, out: str | Path, copy: bool = False,
               progress: bool = True) -> ConvertReport:
    """Writes ``plan`` into ``out/database``, ``out/queries`` (+ ground truth, info file).

    Raises:
        ConvertError: a raw image is missing, two images would share a name, or a file in
            ``out`` differs from the one it should be.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    database_names = _names(plan.database, "database")
    query_names = _names(plan.queries, "query")
    work = [(item, out / "database" / name) for item, name in zip(plan.database, database_names)]
    work += [(item, out / "queries" / name) for item, name in zip(plan.queries, query_names)]
    missing = [item.source for item, _ in work if not item.source.is_file()]
    if missing:
        raise ConvertError(
            f"{missing[0]}: raw image not found ({len(missing)} of {len(work)} missing); "
            "is the raw folder complete?"
        )
    for part in ("database", "queries"):
        (out / part).mkdir(parents=True, exist_ok=True)
    report = ConvertReport(out=out, protocol=plan.protocol, database_num=len(plan.database),
                           queries_num=len(plan.queries), notes=list(plan.notes))
    for item, destination in tqdm(work, desc=f"Converting {plan.protocol}", unit="image",
                                  disable=not progress):
        if item.re_encode_as and destination.exists():
            # Written atomically: a file in place is a complete re-encoding.
            report.already_there += 1
            continue
        if item.re_encode_as:
            how = _re_encode(item.source, destination)
            report.linked_by[how] = report.linked_by.get(how, 0) + 1
            report.created += 1
            continue
        if destination.exists() or destination.is_symlink():
            if not _same_file(item.source, destination):
                raise ConvertError(
                    f"{destination}: exists but is not {item.source}; remove it (or the whole "
                    f"{out}) and convert again"
                )
            report.already_there += 1
            continue
        how = _place(item.source, destination, copy)
        report.linked_by[how] = report.linked_by.get(how, 0) + 1
        report.created += 1
    positives = _positives(plan)
    report.queries_without_positives = [
        name for name, found in zip(query_names, positives) if len(found) == 0
    ]
    if plan.positives is not None:
        write_json_atomic(out / GROUND_TRUTH_FILE, {
            "protocol": plan.protocol,
            "rule": plan.rule,
            "positives": {
                name: [database_names[index] for index in found]
                for name, found in zip(query_names, plan.positives)
            },
        })
    write_json_atomic(out / DATASET_INFO_FILE, {
        "protocol": plan.protocol,
        "database_num": len(plan.database),
        "queries_num": len(plan.queries),
        "positives": plan.rule,
        "file_list_sha256": file_list_sha256(database_names, query_names),
        "queries_without_positives": report.queries_without_positives,
        "notes": plan.notes,
    })
    return report


def _positives(plan: ConversionPlan) -> list[np.ndarray]:
    if plan.positives is not None:
        return [np.asarray(found) for found in plan.positives]
    query_utm = np.array([[i.tag.utm_east, i.tag.utm_north] for i in plan.queries]).reshape(-1, 2)
    database_utm = np.array([[i.tag.utm_east, i.tag.utm_north]
                             for i in plan.database]).reshape(-1, 2)
    return positives_within(query_utm, database_utm, float(plan.positive_dist_threshold or 25.0))
