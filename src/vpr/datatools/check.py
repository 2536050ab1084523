"""Validating a dataset folder before a run uses it (`vpr data check`).

A training folder is a tree of @-named images grouped into places by their ``note`` field;
a test (or validation) folder has ``database/`` and ``queries/``. Each check below returns
plain :class:`Problem` lists, and :func:`check_dataset` gathers them in a
:class:`CheckReport`, so the CLI only prints and the tests only look at data.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vpr.data.datasets import positives_within
from vpr.data.geotag import FIELD_NAMES, GeoTag, GeoTagError, parse_filename
from vpr.data.images import BadImageError, list_images, open_rgb

KINDS = ("train", "test")

# Every problem category, in the order reports list them, with the title printed for it.
PROBLEM_TITLES = {
    "unparseable_names": "file names that do not follow the @-format",
    "bad_coordinates": "NaN, infinite or out-of-range coordinates",
    "missing_place_ids": "training images with an empty note field (place id)",
    "unreadable_images": "images that cannot be opened",
    "duplicate_names": "file names that occur more than once",
    "small_places": "places with fewer than min_img_per_place images",
    "queries_without_positive": "queries with no database image within the threshold",
}

# Fields whose value is a position: NaN, inf or out of range there breaks positives.
_RANGES = {
    "utm_east": (-math.inf, math.inf),
    "utm_north": (-math.inf, math.inf),
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
}


@dataclass(frozen=True)
class Problem:
    """One finding: ``item`` is a path (or a place id) and ``detail`` says what is wrong."""

    item: str
    detail: str


@dataclass
class CheckReport:
    """The result of checking one dataset folder.

    Attributes:
        root: the folder checked.
        kind: ``"train"`` or ``"test"``.
        image_counts: images per part (``{"train": n}`` or ``{"database": n, "queries": m}``).
        place_count: places (distinct notes) of a training folder; ``None`` for test sets.
        images_per_place: min/median/max images per place of a training folder.
        opened: whether every image was opened (``False`` with ``--no_open``).
        settings: the thresholds used.
        problems: every category of :data:`PROBLEM_TITLES`, possibly empty.
    """

    root: str
    kind: str
    image_counts: dict[str, int]
    place_count: int | None
    images_per_place: dict[str, float] | None
    opened: bool
    settings: dict[str, float]
    problems: dict[str, list[Problem]] = field(
        default_factory=lambda: {name: [] for name in PROBLEM_TITLES}
    )

    @property
    def ok(self) -> bool:
        """True when no category holds a problem."""
        return not any(self.problems.values())

    def to_dict(self) -> dict:
        """The report as JSON-ready data, with ``ok`` and per-category counts added."""
        data = asdict(self)
        data["ok"] = self.ok
        data["problem_counts"] = {name: len(found) for name, found in self.problems.items()}
        return data


def detect_kind(root: str | Path, kind: str | None = None) -> str:
    """Returns ``"test"`` when ``root`` has ``database/`` and ``queries/``, else ``"train"``.

    Args:
        root: the dataset folder.
        kind: an explicit choice (``"train"``/``"test"``), checked against the folder.

    Raises:
        FileNotFoundError: the folder does not exist, or ``kind="test"`` and a part is missing.
        ValueError: ``kind`` is not one of :data:`KINDS`.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    has_parts = all((root / part).is_dir() for part in ("database", "queries"))
    if kind is None:
        return "test" if has_parts else "train"
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "test" and not has_parts:
        raise FileNotFoundError(
            f"{root}: a test set needs 'database/' and 'queries/' sub-folders"
        )
    return kind


def dataset_parts(root: str | Path, kind: str) -> dict[str, list[Path]]:
    """The images of each part: ``{"train": [...]}`` or ``{"database": [...], "queries": [...]}``.

    Raises:
        ValueError: a part holds no image (from :func:`list_images`).
    """
    root = Path(root)
    if kind == "test":
        return {part: list_images(root / part) for part in ("database", "queries")}
    return {"train": list_images(root)}


def _strip_path(message: str, path: Path) -> str:
    # The parser's messages start with the path; the report already shows it.
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def bad_coordinate_fields(name: str) -> list[str]:
    """The position fields of an @-name that are NaN, infinite or out of range.

    Uses the parser's positional rule (with 3+ values the last one is the note) so that a
    ``nan`` in, say, the pano id is not mistaken for a coordinate.
    """
    values = name.split("@")[1:-1]
    ordered = values[:-1] if len(values) >= 3 else values
    bad = []
    for field_name, raw in zip(FIELD_NAMES, ordered):
        if field_name not in _RANGES or raw == "":
            continue
        try:
            number = float(raw)
        except ValueError:
            continue  # not a number at all: the parser's message explains it better
        low, high = _RANGES[field_name]
        if not (math.isfinite(number) and low <= number <= high):
            bad.append(f"{field_name}={raw}")
    return bad


def parse_names(
    paths: Iterable[Path],
) -> tuple[dict[Path, GeoTag], list[Problem], list[Problem]]:
    """Parses every name; returns (tags of the good ones, unparseable, bad coordinates)."""
    tags: dict[Path, GeoTag] = {}
    unparseable: list[Problem] = []
    bad_coordinates: list[Problem] = []
    for path in paths:
        bad_fields = bad_coordinate_fields(path.name)
        if bad_fields:
            bad_coordinates.append(Problem(str(path), ", ".join(bad_fields)))
            continue
        try:
            tags[path] = parse_filename(path)
        except GeoTagError as error:
            unparseable.append(Problem(str(path), _strip_path(str(error), path)))
    return tags, unparseable, bad_coordinates


def _open_error(path: Path) -> str | None:
    try:
        open_rgb(path)
    except BadImageError as error:
        return _strip_path(str(error), path)
    return None


def find_unreadable(
    paths: list[Path], workers: int | None = None, progress: bool = True
) -> list[Problem]:
    """Opens and decodes every image (as training would); lists those that fail.

    Args:
        paths: the images to open.
        workers: threads; Pillow decodes outside the GIL, so threads overlap disk and CPU.
        progress: show a tqdm bar on stderr.
    """
    workers = workers or min(8, os.cpu_count() or 1)
    problems = []
    with ThreadPoolExecutor(max_workers=workers) as executor:
        results = executor.map(_open_error, paths)
        bar = tqdm(results, total=len(paths), desc="Opening images", unit="img",
                   disable=not progress)
        # The bar first: zip stops at its end, so the bar sees its last item and closes.
        for error, path in zip(bar, paths):
            if error is not None:
                problems.append(Problem(str(path), error))
    return problems


def find_duplicate_names(paths: Iterable[Path]) -> list[Problem]:
    """One problem per file name found in more than one folder (the first path is named)."""
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        by_name[path.name].append(path)
    return [
        Problem(str(same[0]), "same name as " + ", ".join(str(other) for other in same[1:]))
        for same in by_name.values()
        if len(same) > 1
    ]


def group_places(tags: dict[Path, GeoTag]) -> tuple[dict[str, list[Path]], list[Problem]]:
    """Groups training images by note, as ``TrainPlaces`` does; empty notes are problems."""
    places: dict[str, list[Path]] = defaultdict(list)
    missing: list[Problem] = []
    for path, tag in tags.items():
        if tag.note:
            places[tag.note].append(path)
        else:
            missing.append(Problem(str(path), "the note field (index -2 of split('@')) is empty"))
    return dict(places), missing


def find_small_places(places: dict[str, list[Path]], min_img_per_place: int) -> list[Problem]:
    """Places that training would drop for having fewer than ``min_img_per_place`` images."""
    return [
        Problem(place, f"{len(paths)} image(s), e.g. {paths[0]}")
        for place, paths in sorted(places.items())
        if len(paths) < min_img_per_place
    ]


def find_queries_without_positive(
    query_tags: dict[Path, GeoTag], database_tags: dict[Path, GeoTag], threshold: float
) -> list[Problem]:
    """Queries with no database image within ``threshold`` metres (UTM east/north)."""
    if not query_tags:
        return []
    query_utm = np.array([(t.utm_east, t.utm_north) for t in query_tags.values()], np.float64)
    database_utm = np.array(
        [(t.utm_east, t.utm_north) for t in database_tags.values()], np.float64
    ).reshape(-1, 2)
    positives = positives_within(query_utm, database_utm, threshold)
    problems = []
    for index, (path, found) in enumerate(zip(query_tags, positives)):
        if len(found):
            continue
        detail = f"no database image within {threshold:g} m"
        if len(database_utm):
            # The nearest distance tells a slightly-off query from one in another city.
            nearest = float(np.sqrt(((database_utm - query_utm[index]) ** 2).sum(1)).min())
            detail += f"; nearest at {nearest:.0f} m"
        problems.append(Problem(str(path), detail))
    return problems


def check_dataset(
    root: str | Path,
    kind: str | None = None,
    positive_dist_threshold: float = 25.0,
    min_img_per_place: int = 4,
    open_images: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> CheckReport:
    """Checks a training or test folder and returns every problem found.

    Args:
        root: the dataset folder.
        kind: ``"train"``, ``"test"`` or ``None`` to detect it from the folder.
        positive_dist_threshold: metres within which a database image is a positive.
        min_img_per_place: places with fewer images are reported (training drops them).
        open_images: decode every image; ``False`` checks names only (much faster).
        workers: threads for opening images.
        progress: show a progress bar while opening images.
    """
    root = Path(root)
    kind = detect_kind(root, kind)
    parts = dataset_parts(root, kind)
    report = CheckReport(
        root=str(root),
        kind=kind,
        image_counts={part: len(paths) for part, paths in parts.items()},
        place_count=None,
        images_per_place=None,
        opened=open_images,
        settings={"positive_dist_threshold": positive_dist_threshold,
                  "min_img_per_place": min_img_per_place},
    )
    all_paths = [path for paths in parts.values() for path in paths]
    tags_per_part = {}
    for part, paths in parts.items():
        tags, unparseable, bad_coordinates = parse_names(paths)
        tags_per_part[part] = tags
        report.problems["unparseable_names"] += unparseable
        report.problems["bad_coordinates"] += bad_coordinates
    # Across parts too: the same name in database/ and queries/ is usually a leaked query.
    report.problems["duplicate_names"] = find_duplicate_names(all_paths)
    if kind == "train":
        places, missing = group_places(tags_per_part["train"])
        report.problems["missing_place_ids"] = missing
        report.problems["small_places"] = find_small_places(places, min_img_per_place)
        report.place_count = len(places)
        if places:
            counts = [len(paths) for paths in places.values()]
            report.images_per_place = {"min": min(counts),
                                       "median": statistics.median(counts),
                                       "max": max(counts)}
    else:
        report.problems["queries_without_positive"] = find_queries_without_positive(
            tags_per_part["queries"], tags_per_part["database"], positive_dist_threshold
        )
    if open_images:
        report.problems["unreadable_images"] = find_unreadable(all_paths, workers, progress)
    return report


def format_report(report: CheckReport, max_examples: int = 5) -> str:
    """A human-readable summary: counts, then each non-empty category with a few examples."""
    if report.kind == "train":
        counts = f"{report.image_counts['train']} images"
    else:
        counts = ", ".join(f"{count} {part}" for part, count in report.image_counts.items())
    lines = [f"{report.kind} set {report.root}: {counts}"]
    if report.place_count is not None:
        lines.append(f"  places: {report.place_count}")
    if report.images_per_place:
        spread = report.images_per_place
        lines.append(
            f"  images per place: min {spread['min']:g}, median {spread['median']:g}, "
            f"max {spread['max']:g}"
        )
    if not report.opened:
        lines.append("  images were not opened (--no_open): unreadable files are not detected")
    found = [(name, report.problems[name]) for name in PROBLEM_TITLES if report.problems[name]]
    if not found:
        lines.append("OK: no problem found")
        return "\n".join(lines)
    lines.append(f"PROBLEMS in {len(found)} categor{'y' if len(found) == 1 else 'ies'}:")
    for name, problems in found:
        lines.append(f"  {PROBLEM_TITLES[name]} [{name}]: {len(problems)}")
        for problem in problems[:max_examples]:
            lines.append(f"    {problem.item}  ({problem.detail})")
        if len(problems) > max_examples:
            lines.append(f"    ... and {len(problems) - max_examples} more (--json lists all)")
    return "\n".join(lines)
