"""The @-filename format that carries an image's geotag.

``@UTM_east@UTM_north@UTM_zone_number@UTM_zone_letter@latitude@longitude@pano_id@tile_num
@heading@pitch@roll@height@timestamp@note@.jpg``

``name.split('@')``: index 1 and 2 are UTM east/north in metres and index -2 is the
``note`` field (GSV-XS stores the place id there). Empty fields are allowed. Files in
the wild often stop after fewer fields; east and north are the minimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

FIELD_NAMES = (
    "utm_east",
    "utm_north",
    "utm_zone_number",
    "utm_zone_letter",
    "latitude",
    "longitude",
    "pano_id",
    "tile_num",
    "heading",
    "pitch",
    "roll",
    "height",
    "timestamp",
    "note",
)


class GeoTagError(ValueError):
    """A file name that does not follow the @-format."""


@dataclass(frozen=True)
class GeoTag:
    """The fields of one @-format file name; text fields are '' when empty."""

    utm_east: float
    utm_north: float
    utm_zone_number: int | None = None
    utm_zone_letter: str = ""
    latitude: float | None = None
    longitude: float | None = None
    pano_id: str = ""
    tile_num: str = ""
    heading: float | None = None
    pitch: float | None = None
    roll: float | None = None
    height: float | None = None
    timestamp: str = ""
    note: str = ""


_FLOAT_FIELDS = {"utm_east", "utm_north", "latitude", "longitude", "heading", "pitch", "roll",
                 "height"}


def _parse_float(value: str, field: str, name: str, required: bool) -> float | None:
    if value == "":
        if required:
            raise GeoTagError(f"{name}: the {field} field is empty; expected a number in metres")
        return None
    try:
        number = float(value)
    except ValueError:
        raise GeoTagError(f"{name}: the {field} field is {value!r}; expected a number") from None
    if not math.isfinite(number):
        raise GeoTagError(f"{name}: the {field} field is {value!r}; expected a finite number")
    return number


def parse_filename(path: str | Path) -> GeoTag:
    """Parses the geotag of an @-format image path (only the file name is read).

    Raises:
        GeoTagError: the name lacks UTM east/north or a numeric field is not a number.
    """
    name = Path(path).name
    parts = name.split("@")
    # parts[0] is what precedes the first '@' (normally empty) and parts[-1] the extension.
    if len(parts) < 4:
        raise GeoTagError(
            f"{path}: file name has no UTM fields; expected '@UTM_east@UTM_north@...@note@.jpg' "
            "(see docs/DATA.md)"
        )
    values = parts[1:-1]
    # Two values: east and north only. Three or more: the last one is always the note
    # (index -2 of the split), and the others fill the fields in order.
    note = values[-1] if len(values) >= 3 else ""
    ordered = values[:-1] if len(values) >= 3 else values
    if len(ordered) > len(FIELD_NAMES) - 1:
        raise GeoTagError(
            f"{path}: file name has {len(values)} @-fields; expected at most {len(FIELD_NAMES)}"
        )
    parsed: dict[str, object] = {"note": note}
    for field, raw in zip(FIELD_NAMES, ordered):
        if field in _FLOAT_FIELDS:
            parsed[field] = _parse_float(raw, field, str(path), field in ("utm_east", "utm_north"))
        elif field == "utm_zone_number":
            if raw:
                try:
                    parsed[field] = int(raw)
                except ValueError:
                    raise GeoTagError(
                        f"{path}: the utm_zone_number field is {raw!r}; expected an integer"
                    ) from None
        else:
            parsed[field] = raw
    return GeoTag(**parsed)  # type: ignore[arg-type]


# Decimal places written per numeric field: UTM to the centimetre, degrees to about 1 mm.
_DECIMALS = {"utm_east": 2, "utm_north": 2, "latitude": 8, "longitude": 8, "heading": 2,
             "pitch": 2, "roll": 2, "height": 2}


def _format_value(field: str, value: object) -> str:
    if value is None:
        return ""
    if field in _DECIMALS:
        return f"{float(value):.{_DECIMALS[field]}f}"  # type: ignore[arg-type]
    return str(value)


def format_filename(tag: GeoTag, extension: str = ".jpg") -> str:
    """Builds the full 14-field @-format file name of a geotag."""
    for field in fields(tag):
        value = getattr(tag, field.name)
        if isinstance(value, str) and any(char in value for char in "@/\\"):
            # '@' would shift the fields; a slash would silently create a sub-folder.
            raise GeoTagError(
                f"the {field.name} field {value!r} must not contain '@', '/' or '\\'"
            )
    body = "@".join(_format_value(name, getattr(tag, name)) for name in FIELD_NAMES)
    return f"@{body}@{extension}"
