"""Copying a folder of the user's photos into the @-format (`vpr data import`).

Positions come from a CSV (``path,lat,lon[,place_id]``) or from the photos' EXIF GPS tags;
latitude/longitude become UTM with the ``utm`` package. The user's files are only ever
read: every photo is copied, nothing is moved, and an existing destination file stops the
import before anything is written.

Nothing outside the two folders is touched: a source (CSV row, symlink) that resolves
outside the source folder is refused and listed, a file that is not a JPEG or PNG is listed
and not copied, and a destination that would resolve outside ``--out`` (a field with a
path separator, '..', NUL or another control character) is refused.
"""

from __future__ import annotations

import csv
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import utm
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from vpr.data.geotag import GeoTag, format_filename
from vpr.data.images import IMAGE_EXTENSIONS, list_images

PLACE_SOURCES = ("folder", "csv", "none")

# EXIF tag ids (EXIF 2.3): the GPS and Exif sub-IFDs, and the tags read from them.
GPS_IFD = 0x8825
EXIF_IFD = 0x8769
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4
GPS_IMG_DIRECTION = 17
DATE_TIME_ORIGINAL = 0x9003

# Characters that cannot sit inside one @-field of a file name.
_FORBIDDEN = ("@", "/", "\\")
# Formats imported: what the extensions of IMAGE_EXTENSIONS promise.
_IMAGE_FORMATS = ("JPEG", "MPO", "PNG")  # MPO: the JPEG variant of many phone cameras


class DataImportError(ValueError):
    """The import cannot proceed (bad CSV, a destination that exists...); nothing was copied."""


@dataclass(frozen=True)
class PhotoLocation:
    """Where one source photo was taken, and the place id it belongs to."""

    source: Path
    latitude: float
    longitude: float
    place_id: str = ""
    timestamp: str = ""
    heading: float | None = None


@dataclass(frozen=True)
class Skipped:
    """A source photo (or CSV row) that was not imported, and why."""

    source: str
    reason: str


@dataclass
class ImportReport:
    """What an import did: (source, destination) pairs copied, and photos skipped."""

    copied: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    dry_run: bool = False


def _check_coordinates(latitude: float, longitude: float) -> str | None:
    """Why a latitude/longitude cannot be used, or None when it can."""
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return f"latitude/longitude {latitude}, {longitude} are not finite numbers"
    if not (-80.0 <= latitude <= 84.0 and -180.0 <= longitude <= 180.0):
        # UTM is defined from 80 S to 84 N; beyond that `utm` raises.
        return f"latitude/longitude {latitude}, {longitude} are outside the UTM range"
    if latitude == 0.0 and longitude == 0.0:
        return "GPS position is 0, 0 (cameras write this when they had no fix)"
    return None


def _check_place_id(place_id: str) -> str | None:
    if any(character in place_id for character in _FORBIDDEN):
        return f"place id {place_id!r} contains one of {' '.join(_FORBIDDEN)}"
    if any(ord(character) < 32 or ord(character) == 127 for character in place_id):
        return f"place id {place_id!r} contains a NUL or another control character"
    if place_id in (".", ".."):
        return f"place id {place_id!r} is not a name"
    return None


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, links and '..' resolved, lies in ``folder``."""
    return path.resolve().is_relative_to(folder.resolve())


def _not_an_image(path: Path) -> str | None:
    """Why ``path`` is not a JPEG or PNG (from its content, not its name), or None."""
    try:
        with Image.open(path) as image:
            found = image.format
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        return f"not an image ({type(error).__name__}: {error})"
    if found not in _IMAGE_FORMATS:
        return f"a {found} image, not JPEG or PNG"
    return None


def folder_place_id(source: Path, src: Path) -> str:
    """The place id of ``--place_from folder``: the photo's sub-folder path joined by '_'."""
    try:
        parts = source.parent.relative_to(src).parts
    except ValueError:
        parts = (source.parent.name,)
    return "_".join(parts)


def _to_degrees(value: object) -> float:
    """EXIF GPS degrees, minutes, seconds (1 to 3 rationals) as decimal degrees."""
    parts = value if isinstance(value, tuple | list) else (value,)
    numbers = [float(part) for part in parts]  # type: ignore[arg-type]
    return sum(number / 60.0**index for index, number in enumerate(numbers[:3]))


def _ref(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip("\x00 ").upper()


def exif_timestamp(text: object) -> str:
    """EXIF ``YYYY:MM:DD HH:MM:SS`` as ``YYYYMMDD_HHMMSS``; '' when absent or malformed.

    Colons and spaces are dropped because they are awkward (or invalid) in file names.
    """
    if not isinstance(text, str):
        return ""
    match = re.match(r"\s*(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})", text)
    return "{}{}{}_{}{}{}".format(*match.groups()) if match else ""


def read_exif_location(path: Path) -> tuple[PhotoLocation | None, str]:
    """Reads GPS position, DateTimeOriginal and image direction from a photo's EXIF.

    Returns:
        The location (place id left empty) and '' on success; ``None`` and the reason why
        the photo has no usable position otherwise.
    """
    try:
        with Image.open(path) as image:
            exif = image.getexif()
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        return None, f"cannot read the file as an image ({error})"
    try:
        gps = exif.get_ifd(GPS_IFD)
        taken = exif.get_ifd(EXIF_IFD).get(DATE_TIME_ORIGINAL)
    except Exception as error:  # noqa: BLE001 - one mangled EXIF block must not stop an import
        return None, f"unreadable EXIF ({type(error).__name__}: {error})"
    if GPS_LATITUDE not in gps or GPS_LONGITUDE not in gps:
        return None, "no GPS position in EXIF"
    try:
        latitude = _to_degrees(gps[GPS_LATITUDE])
        longitude = _to_degrees(gps[GPS_LONGITUDE])
    except (TypeError, ValueError, ZeroDivisionError) as error:
        return None, f"malformed EXIF GPS position ({error})"
    # A missing ref is read as N/E: some writers omit it for positive values.
    if _ref(gps.get(GPS_LATITUDE_REF)) == "S":
        latitude = -latitude
    if _ref(gps.get(GPS_LONGITUDE_REF)) == "W":
        longitude = -longitude
    heading = None
    if GPS_IMG_DIRECTION in gps:
        try:
            heading = float(gps[GPS_IMG_DIRECTION])
        except (TypeError, ValueError, ZeroDivisionError):
            heading = None
        if heading is not None and not math.isfinite(heading):
            heading = None
    timestamp = exif_timestamp(taken)
    return PhotoLocation(path, latitude, longitude, timestamp=timestamp, heading=heading), ""


def locations_from_exif(src: Path, place_from: str) -> tuple[list[PhotoLocation], list[Skipped]]:
    """Every jpg/jpeg/png under ``src`` with its EXIF position; photos without one are skipped.

    Raises:
        DataImportError: ``place_from`` is ``"csv"`` (there is no CSV here).
    """
    if place_from == "csv":
        raise DataImportError("--place_from csv needs --csv FILE")
    locations, skipped = [], []
    for path in list_images(src):
        location, reason = read_exif_location(path)
        if location is None:
            skipped.append(Skipped(str(path), reason))
            continue
        place_id = folder_place_id(path, src) if place_from == "folder" else ""
        locations.append(PhotoLocation(path, location.latitude, location.longitude, place_id,
                                       location.timestamp, location.heading))
    return locations, skipped


def locations_from_csv(
    src: Path, csv_path: Path, place_from: str
) -> tuple[list[PhotoLocation], list[Skipped]]:
    """Rows ``path,lat,lon[,place_id]`` (paths relative to ``src``) as photo locations.

    Rows with a missing file, a non-image file or unusable coordinates are skipped.

    Raises:
        DataImportError: the CSV lacks a required column.
    """
    if not csv_path.is_file():
        raise DataImportError(f"{csv_path}: CSV file not found")
    # utf-8-sig: spreadsheets often save a byte-order mark before the first column name.
    with open(csv_path, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        columns = [name.strip() for name in reader.fieldnames or []]
        required = ["path", "lat", "lon"] + (["place_id"] if place_from == "csv" else [])
        missing = [name for name in required if name not in columns]
        if missing:
            raise DataImportError(
                f"{csv_path}: missing column(s) {', '.join(missing)}; found "
                f"{', '.join(columns) or 'none'}; expected path,lat,lon[,place_id]"
            )
        rows = [{key.strip(): (value or "").strip() for key, value in row.items() if key}
                for row in reader]
    locations, skipped = [], []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"{csv_path}:{line} ({row['path']!r})"
        if "\x00" in row["path"]:
            skipped.append(Skipped(where, "the path contains a NUL character"))
            continue
        # An absolute path replaces src here; _inside then refuses it unless it is in src.
        source = src / row["path"]
        if row["path"] and not _inside(source, src):
            skipped.append(Skipped(where, f"outside the source folder {src}; refused"))
            continue
        if not row["path"] or not source.is_file():
            skipped.append(Skipped(where, f"file not found under {src}"))
            continue
        if source.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(Skipped(where, f"not one of {', '.join(IMAGE_EXTENSIONS)}"))
            continue
        reason = _not_an_image(source)
        if reason:
            skipped.append(Skipped(where, reason))
            continue
        try:
            latitude, longitude = float(row["lat"]), float(row["lon"])
        except ValueError:
            skipped.append(Skipped(where, f"lat/lon {row['lat']!r}, {row['lon']!r} are not "
                                          "numbers"))
            continue
        if place_from == "csv":
            place_id = row["place_id"]
        elif place_from == "folder":
            place_id = folder_place_id(source, src)
        else:
            place_id = ""
        locations.append(PhotoLocation(source, latitude, longitude, place_id))
    return locations, skipped


def geotag_of(location: PhotoLocation) -> GeoTag:
    """The @-name fields of a location: UTM from ``utm.from_latlon``, note = place id.

    The source file's stem goes in ``pano_id``: it keeps names unique when two photos
    share a position, and tells which original each imported file came from.
    """
    east, north, zone_number, zone_letter = utm.from_latlon(location.latitude,
                                                            location.longitude)
    stem = location.source.stem
    for character in _FORBIDDEN:
        stem = stem.replace(character, "_")
    # Control characters (newlines...) are legal in POSIX names but break listings and CSVs.
    stem = "".join("_" if ord(character) < 32 or ord(character) == 127 else character
                   for character in stem)
    return GeoTag(
        utm_east=float(east), utm_north=float(north), utm_zone_number=int(zone_number),
        utm_zone_letter=str(zone_letter), latitude=location.latitude,
        longitude=location.longitude, pano_id=stem, heading=location.heading,
        timestamp=location.timestamp, note=location.place_id,
    )


def destination_of(location: PhotoLocation, src: Path, dst: Path) -> Path:
    """The @-named copy's path: the same sub-folder under ``dst`` as under ``src``."""
    try:
        relative_folder = location.source.parent.relative_to(src)
    except ValueError:
        relative_folder = Path()
    extension = location.source.suffix.lower()
    return dst / relative_folder / format_filename(geotag_of(location), extension)


def plan_import(
    locations: list[PhotoLocation], src: Path, dst: Path
) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """Pairs each usable location with its destination; checks nothing will be overwritten.

    Raises:
        DataImportError: a destination file exists, or two photos would get the same name.
    """
    plan: list[tuple[Path, Path]] = []
    skipped: list[Skipped] = []
    for location in locations:
        reason = _check_coordinates(location.latitude, location.longitude)
        reason = reason or _check_place_id(location.place_id)
        if not reason and not _inside(location.source, src):
            # A symlink under src that points elsewhere: the user's other files stay private.
            reason = f"resolves outside the source folder {src}; refused"
        destination = None if reason else destination_of(location, src, dst)
        if destination is not None and not _inside(destination, dst):
            reason = f"its output name {destination.name!r} would leave --out {dst}; refused"
        if reason:
            skipped.append(Skipped(str(location.source), reason))
            continue
        plan.append((location.source, destination))
    existing = [destination for _, destination in plan if destination.exists()]
    if existing:
        raise DataImportError(
            f"{len(existing)} destination file(s) already exist, e.g. {existing[0]}; "
            "nothing was copied (import into an empty --out folder)"
        )
    seen: dict[Path, Path] = {}
    for source, destination in plan:
        if destination in seen:
            raise DataImportError(
                f"{source} and {seen[destination]} would both become {destination}; "
                "nothing was copied (rename one of them)"
            )
        seen[destination] = source
    return plan, skipped


def copy_new(source: Path, destination: Path) -> None:
    """Copies a file with its timestamps; mode 'xb' makes the no-overwrite rule race-free."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(source, "rb") as reader, open(destination, "xb") as writer:
            shutil.copyfileobj(reader, writer)
    except FileExistsError:
        raise DataImportError(f"{destination}: appeared during the import; not overwritten") \
            from None
    shutil.copystat(source, destination)


def import_photos(
    src: str | Path,
    dst: str | Path,
    csv_path: str | Path | None = None,
    place_from: str | None = None,
    dry_run: bool = False,
    progress: bool = True,
) -> ImportReport:
    """Copies the photos under ``src`` into ``dst`` with @-format names.

    Args:
        src: the user's photo folder (only read).
        dst: the output folder; may exist, but no file in it is ever replaced.
        csv_path: a CSV ``path,lat,lon[,place_id]``; without it, EXIF GPS tags are read.
        place_from: where the place id (note field) comes from: ``"folder"`` (the
            sub-folder path), ``"csv"`` (the place_id column) or ``"none"``. Default:
            ``"csv"`` when the CSV has a place_id column, else ``"folder"``.
        dry_run: plan and report, but copy nothing.
        progress: show a progress bar while copying.

    Raises:
        DataImportError: bad arguments or CSV, or a destination file exists.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DataImportError(f"{src}: source folder not found")
    if dst.resolve() == src.resolve() or dst.resolve().is_relative_to(src.resolve()):
        # A re-run would then find the copies among the sources.
        raise DataImportError(f"--out {dst} must not be inside the source folder {src}")
    if place_from is None:
        place_from = "csv" if csv_path and _csv_has_place_id(Path(csv_path)) else "folder"
    if place_from not in PLACE_SOURCES:
        raise DataImportError(
            f"--place_from {place_from!r}: expected one of {', '.join(PLACE_SOURCES)}"
        )
    if csv_path is not None:
        locations, skipped = locations_from_csv(src, Path(csv_path), place_from)
    else:
        locations, skipped = locations_from_exif(src, place_from)
    plan, unusable = plan_import(locations, src, dst)
    report = ImportReport(skipped=skipped + unusable, dry_run=dry_run)
    if not dry_run:
        for source, destination in tqdm(plan, desc="Copying photos", unit="img",
                                        disable=not progress):
            copy_new(source, destination)
    report.copied = plan
    return report


def _csv_has_place_id(csv_path: Path) -> bool:
    if not csv_path.is_file():
        return False
    with open(csv_path, newline="", encoding="utf-8-sig") as file:
        header = next(csv.reader(file), [])
    return "place_id" in [name.strip() for name in header]
