"""Files shipped with vpr that more than one part reads: the map of a located photo.

``leaflet/`` is Leaflet 1.9.4 (BSD-2-Clause, its LICENSE beside it), vendored from the npm
package ``leaflet@1.9.4`` (``dist/``), so that no map needs a CDN. ``map/`` is our own map of
one located photo (``locationmap.js`` and ``.css``): the prediction, its uncertainty radius,
the matches, a scale, OpenStreetMap tiles when online and a plain background when not. Both
`vpr serve`'s page (which serves these files) and `vpr locate --map` (which inlines them in
one HTML file) draw with it, so the two maps look and behave alike.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

# OpenStreetMap's tile server: the only place a map may load anything from (its images).
OSM_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_TILE_ORIGIN = "https://tile.openstreetmap.org"


def asset_root() -> Traversable:
    """The folder of the shipped files (inside the installed package)."""
    return resources.files("vpr.assets")


def read_asset(name: str) -> bytes:
    """One shipped file by its relative path, e.g. ``"leaflet/leaflet.js"``.

    Raises:
        FileNotFoundError: no such file is shipped.
    """
    entry = asset_root()
    for part in name.split("/"):
        entry = entry.joinpath(part)
    if not entry.is_file():
        raise FileNotFoundError(f"vpr.assets has no file {name}")
    return entry.read_bytes()
