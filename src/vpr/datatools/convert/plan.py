"""What a converter produces: the images of a test set, their geotags and their positives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vpr.data.geotag import GeoTag


class ConvertError(ValueError):
    """Raw data that is missing or not in the layout a converter expects."""


@dataclass(frozen=True)
class Item:
    """One image to place: its raw file and the geotag its @-name will carry.

    ``re_encode_as`` (e.g. ".png") asks for a re-encoded copy instead of a link, for raw
    formats the readers do not open (Eynsham's .ppm).
    """

    source: Path
    tag: GeoTag
    re_encode_as: str | None = None


@dataclass
class ConversionPlan:
    """A whole converted test set, before any file is written.

    Attributes:
        protocol: the manifest name it implements (e.g. ``pitts30k_test``).
        database: the database images, in order.
        queries: the query images, in order.
        rule: the positive rule in words, e.g. "25 m" or "frames within +-10".
        positive_dist_threshold: metres, when positives are a distance.
        positives: per query, the database indices that are correct; None when positives
            are a distance (then nothing beyond the @-names is written).
        notes: lines for the report (e.g. images skipped by the protocol).
    """

    protocol: str
    database: list[Item]
    queries: list[Item]
    rule: str
    positive_dist_threshold: float | None = 25.0
    positives: list[list[int]] | None = None
    notes: list[str] = field(default_factory=list)


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a one-line error naming what was expected there."""
    if not path.is_file():
        raise ConvertError(f"{path}: not found; expected {what}")
    return path


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a one-line error naming what was expected there."""
    if not path.is_dir():
        raise ConvertError(f"{path}: folder not found; expected {what}")
    return path


def first_existing(candidates: list[Path], what: str) -> Path:
    """The first of ``candidates`` that exists; else an error naming them all."""
    for path in candidates:
        if path.exists():
            return path
    names = " or ".join(str(path) for path in candidates)
    raise ConvertError(f"{names}: not found; expected {what}")
