"""The page's own files (its script, the map's and Leaflet's), read once and served from memory.

Only the files shipped in ``vpr/serve/static/`` (the page's script) and ``vpr/assets/``
(Leaflet 1.9.4 with its LICENSE, and the map shared with `vpr locate --map`) are served, by
their exact relative path: a request's path is a key in a dictionary made at start-up, never
joined to a folder, so it cannot reach anything else on the server. The page needs no CDN.
"""

from __future__ import annotations

from importlib import resources

from vpr.assets import asset_root

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}


def load_static_files() -> dict[str, tuple[bytes, str]]:
    """Every file of ``vpr/serve/static/`` and ``vpr/assets/``, by relative path:
    ``{"leaflet/leaflet.js": (bytes, media type)}``.

    Files of other types (none are shipped) are left out.
    """
    files: dict[str, tuple[bytes, str]] = {}
    pending = [(resources.files("vpr.serve").joinpath("static"), ""), (asset_root(), "")]
    while pending:
        folder, prefix = pending.pop()
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                pending.append((entry, name + "/"))
                continue
            media_type = next((kind for ending, kind in MEDIA_TYPES.items()
                               if entry.name.endswith(ending)), None)
            if media_type is not None:
                files[name] = (entry.read_bytes(), media_type)
    return files
