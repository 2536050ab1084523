"""Dataset analysis written as files: tables, extents and plots (`vpr data stats`).

Only file names are parsed, except for the few images of the sample sheet, so this runs
in seconds on GSV-XS-sized folders. Plots use matplotlib's object API with the Agg
canvas: no pyplot, so no global backend is changed for the rest of the process.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vpr.data.datasets import positives_within
from vpr.data.geotag import GeoTag, GeoTagError, parse_filename
from vpr.data.images import BadImageError, open_rgb
from vpr.datatools.check import dataset_parts, detect_kind
from vpr.utils.atomic import write_json_atomic

# The files written, by key; the docs and tests refer to these names.
OUTPUT_FILES = {
    "counts_csv": "counts_per_city.csv",
    "counts_plot": "counts_per_city.png",
    "images_per_place": "images_per_place.png",
    "positives_per_query": "positives_per_query.png",
    "extents": "extents.json",
    "scatter": "utm_scatter.png",
    "sample_sheet": "sample_sheet.png",
}

# Legends with more entries than this are unreadable; the colours still differ.
_MAX_LEGEND = 20


@dataclass(frozen=True)
class Entry:
    """One parsed image: its part (train/database/queries), city (sub-folder) and tag."""

    path: Path
    part: str
    city: str
    tag: GeoTag


def city_of(path: Path, part_root: Path, part: str) -> str:
    """The first sub-folder under the part's root (GSV-XS keeps one per city).

    Training images directly in the root are ``"(root)"``; test images are grouped as
    ``database``/``queries``, or ``database/<sub-folder>`` when nested.
    """
    relative = path.relative_to(part_root).parts
    if part == "train":
        return relative[0] if len(relative) > 1 else "(root)"
    return f"{part}/{relative[0]}" if len(relative) > 1 else part


def collect_entries(root: Path, kind: str) -> tuple[list[Entry], int]:
    """Parses every image name; returns the entries and the number of names skipped."""
    entries = []
    skipped = 0
    for part, paths in dataset_parts(root, kind).items():
        part_root = root if part == "train" else root / part
        for path in paths:
            try:
                tag = parse_filename(path)
            except GeoTagError:
                skipped += 1  # `vpr data check` explains these; stats just leaves them out
                continue
            entries.append(Entry(path, part, city_of(path, part_root, part), tag))
    return entries, skipped


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def write_counts(entries: list[Entry], csv_path: Path, png_path: Path) -> None:
    """Images and places (distinct notes) per city: a CSV and a horizontal bar chart."""
    images = Counter(entry.city for entry in entries)
    places: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if entry.tag.note:
            places[entry.city].add(entry.tag.note)
    cities = sorted(images)
    with open(csv_path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["city", "images", "places"])
        for city in cities:
            writer.writerow([city, images[city], len(places[city])])
    figure = Figure(figsize=(8, max(2.5, 0.3 * len(cities) + 1)))
    axes = figure.add_subplot()
    axes.barh(cities, [images[city] for city in cities], color="tab:blue")
    axes.invert_yaxis()  # alphabetical from the top
    axes.set_xlabel("images")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(f"Images per city ({len(entries)} in all)")
    figure.tight_layout()
    _save(figure, png_path)


def write_histogram(counts: list[int], title: str, xlabel: str, ylabel: str,
                    path: Path) -> None:
    """An integer histogram (one bar per value up to 50, wider bins beyond)."""
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    if counts:
        top = max(counts)
        bins = np.arange(min(counts), top + 2) - 0.5 if top - min(counts) <= 50 else 50
        axes.hist(counts, bins=bins, color="tab:green", edgecolor="black", linewidth=0.3)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    # Counts of images and places are whole numbers; so are the ticks.
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title)
    figure.tight_layout()
    _save(figure, path)


def _span(values: list[float]) -> list[float] | None:
    return [min(values), max(values)] if values else None


def extents(entries: list[Entry]) -> dict:
    """Coordinate extents of some entries: UTM and lat/lon ranges, span, zones."""
    east = [entry.tag.utm_east for entry in entries]
    north = [entry.tag.utm_north for entry in entries]
    latitude = [e.tag.latitude for e in entries if e.tag.latitude is not None]
    longitude = [e.tag.longitude for e in entries if e.tag.longitude is not None]
    zones = sorted({f"{e.tag.utm_zone_number or ''}{e.tag.utm_zone_letter}" for e in entries}
                   - {""})
    return {
        "images": len(entries),
        "utm_east": _span(east),
        "utm_north": _span(north),
        # Metres only mean something within one UTM zone; see "utm_zones".
        "span_m": [max(east) - min(east), max(north) - min(north)] if entries else None,
        "latitude": _span(latitude),
        "longitude": _span(longitude),
        "utm_zones": zones,
    }


def write_scatter(entries: list[Entry], kind: str, path: Path) -> None:
    """UTM positions: database vs queries for a test set, one colour per city for training."""
    key = (lambda entry: entry.part) if kind == "test" else (lambda entry: entry.city)
    groups: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        groups[key(entry)].append(entry)
    figure = Figure(figsize=(7, 7))
    axes = figure.add_subplot()
    # Queries on top and larger, so they stay visible over a dense database.
    styles = {"database": ("tab:blue", 4), "queries": ("tab:red", 10)}
    for name in sorted(groups, key=lambda group: (group == "queries", group)):
        color, size = styles.get(name, (None, 4))
        group = groups[name]
        axes.scatter([e.tag.utm_east for e in group], [e.tag.utm_north for e in group],
                     s=size, color=color, label=f"{name} ({len(group)})", rasterized=True)
    zones = {(e.tag.utm_zone_number, e.tag.utm_zone_letter) for e in entries}
    title = "UTM positions"
    if len(zones) > 1:
        title += f" ({len(zones)} UTM zones overlaid: compare within a city only)"
    axes.set_title(title)
    axes.set_xlabel("UTM east (m)")
    axes.set_ylabel("UTM north (m)")
    axes.set_aspect("equal", adjustable="datalim")
    if 0 < len(groups) <= _MAX_LEGEND:
        axes.legend(loc="best", fontsize="small", markerscale=2)
    figure.tight_layout()
    _save(figure, path)


def choose_sample(entries: list[Entry], kind: str, place: str | None, size: int,
                  positive_dist_threshold: float) -> tuple[str, list[Entry]]:
    """The images of the sample sheet and its title.

    Training: the images of ``place`` (default: the place with the most images). Test: the
    first query that has positives, then its nearest database images.

    Raises:
        ValueError: ``place`` is not a place of the folder.
    """
    if kind == "train":
        by_place: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            if entry.tag.note:
                by_place[entry.tag.note].append(entry)
        if not by_place:
            return "no place ids (note field) found", []
        if place is None:
            place = min(by_place, key=lambda name: (-len(by_place[name]), name))
        elif place not in by_place:
            raise ValueError(f"--place {place!r}: no image has this note (place id)")
        return f"place {place} ({len(by_place[place])} images)", by_place[place][:size]
    database = [entry for entry in entries if entry.part == "database"]
    queries = [entry for entry in entries if entry.part == "queries"]
    if not database or not queries:
        return "no parseable database or query image", []
    database_utm = np.array([(e.tag.utm_east, e.tag.utm_north) for e in database])
    query_utm = np.array([(e.tag.utm_east, e.tag.utm_north) for e in queries])
    positives = positives_within(query_utm, database_utm, positive_dist_threshold)
    for index, found in enumerate(positives):
        if len(found):
            distances = np.sqrt(((database_utm[found] - query_utm[index]) ** 2).sum(1))
            nearest = [database[i] for i in found[np.argsort(distances, kind="stable")]]
            return (f"query {queries[index].path.name[:40]} and its {len(found)} positive(s)",
                    [queries[index]] + nearest[: size - 1])
    return f"no query has a database image within {positive_dist_threshold:g} m", []


def write_sample_sheet(title: str, sample: list[Entry], path: Path) -> None:
    """The sample images side by side, each titled with its city or part and UTM position."""
    columns = max(1, len(sample))
    figure = Figure(figsize=(2.5 * columns, 3.2))
    for index, entry in enumerate(sample):
        axes = figure.add_subplot(1, columns, index + 1)
        try:
            image = open_rgb(entry.path)
            image.thumbnail((256, 256))
            axes.imshow(np.asarray(image))
        except BadImageError:
            axes.text(0.5, 0.5, "unreadable", ha="center", va="center")
        label = entry.city if entry.part == "train" else entry.part
        axes.set_title(f"{label}\n{entry.tag.utm_east:.0f}, {entry.tag.utm_north:.0f}",
                       fontsize=8)
        axes.axis("off")
    if not sample:
        figure.add_subplot().axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)


def write_stats(
    root: str | Path,
    out: str | Path,
    kind: str | None = None,
    positive_dist_threshold: float = 25.0,
    place: str | None = None,
    sample_size: int = 8,
) -> dict[str, Path]:
    """Writes the analysis of a dataset folder into ``out``; returns the files by key.

    Training sets get ``images_per_place.png``; test sets get ``positives_per_query.png``
    instead (test images need no place id). Existing report files are replaced.

    Raises:
        ValueError: no image name parses, or ``place`` is unknown.
    """
    root = Path(root)
    kind = detect_kind(root, kind)
    entries, skipped = collect_entries(root, kind)
    if not entries:
        raise ValueError(f"{root}: no image has a valid @-name; run `vpr data check {root}`")
    # Chosen first so that an unknown --place fails before any file is written.
    title, sample = choose_sample(entries, kind, place, sample_size, positive_dist_threshold)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {key: out / name for key, name in OUTPUT_FILES.items()}
    write_counts(entries, files["counts_csv"], files["counts_plot"])
    if kind == "train":
        del files["positives_per_query"]
        per_place = Counter(entry.tag.note for entry in entries if entry.tag.note)
        write_histogram(sorted(per_place.values()),
                        f"Images per place ({len(per_place)} places)",
                        "images in the place", "places", files["images_per_place"])
    else:
        del files["images_per_place"]
        database = [e for e in entries if e.part == "database"]
        queries = [e for e in entries if e.part == "queries"]
        positives = positives_within(
            np.array([(e.tag.utm_east, e.tag.utm_north) for e in queries]).reshape(-1, 2),
            np.array([(e.tag.utm_east, e.tag.utm_north) for e in database]).reshape(-1, 2),
            positive_dist_threshold,
        )
        write_histogram([len(found) for found in positives],
                        f"Database images within {positive_dist_threshold:g} m of each query",
                        "positives per query", "queries", files["positives_per_query"])
    parts = sorted({entry.part for entry in entries})
    report = {
        "root": str(root),
        "kind": kind,
        "unparseable_names": skipped,
        "all": extents(entries),
        **{part: extents([e for e in entries if e.part == part]) for part in parts
           if len(parts) > 1},
    }
    write_json_atomic(files["extents"], report)
    write_scatter(entries, kind, files["scatter"])
    write_sample_sheet(title, sample, files["sample_sheet"])
    return files
