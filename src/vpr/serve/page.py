"""The single web page of `vpr serve`: drop photos, see where they were taken, take it away.

The page is ``templates/page.html`` (its HTML and CSS), package data read with
``importlib.resources``; its script is ``static/page.js``, its map
``vpr/assets/map/locationmap.js`` (shared with `vpr locate --map`) over Leaflet, all served
by the service itself (`vpr.serve.static`), so nothing comes from a CDN. Map tiles
come from OpenStreetMap when the browser is online; offline, the map still draws the
points, the uncertainty radius and a scale on a plain background, and says why.
Thumbnails come from ``/thumbnail/{id}``, larger views from ``/image/{id}``.

The template lives outside ``static/`` because it is not served as it is: its ``__NAME__``
placeholders are filled in once, at start-up, each with an HTML-escaped value (the settings
JSON with ``</`` escaped, as it sits inside a ``<script>``).
"""

from __future__ import annotations

import html
import json
import re
from importlib import resources

from vpr.assets import OSM_TILE_URL as TILE_URL  # the only thing loaded from elsewhere

# The page's Content-Security-Policy: scripts, styles and data only from this service.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' blob: data: "
                           "https://tile.openstreetmap.org; "
                           "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                           "connect-src 'self' blob:; base-uri 'none'; form-action 'self'")

_PLACEHOLDER = re.compile(r"__([A-Z][A-Z_]*[A-Z])__")


def page_template() -> str:
    """The page's HTML with its ``__NAME__`` placeholders, as shipped in the package."""
    return resources.files("vpr.serve").joinpath("templates", "page.html").read_text("utf-8")


def render_page(images: int, top_k: int, max_top_k: int, max_upload_bytes: int,
                max_batch_files: int = 50, max_batch_bytes: int = 100 * 2**20) -> str:
    """The page, with the service's settings filled in.

    Args:
        images: how many images the index holds (shown in the header).
        top_k: the default number of matches.
        max_top_k: the largest number of matches the service accepts.
        max_upload_bytes: the upload size limit (also checked by the page before sending).
        max_batch_files: the most photos the page sends in one request.
        max_batch_bytes: the largest request the page sends (photos are split to fit).
    """
    settings = {"maxUploadBytes": int(max_upload_bytes), "maxBatchFiles": int(max_batch_files),
                "maxBatchBytes": int(max_batch_bytes), "tileUrl": TILE_URL}
    values = {
        name: html.escape(value) for name, value in {
            "IMAGES": f"{images:,}",
            "TOP_K": str(int(top_k)),
            "MAX_TOP_K": str(int(max_top_k)),
            "MAX_UPLOAD_MB": f"{max_upload_bytes / 2**20:g}",
        }.items()
    }
    # Inside <script>: "</" would end it early; numbers and a URL only, but escape anyway.
    values["SETTINGS"] = json.dumps(settings).replace("</", "<\\/")
    template = page_template()
    found = set(_PLACEHOLDER.findall(template))
    if found != set(values):
        # The template and this function drifted apart: a bug in the package, not user input.
        raise RuntimeError(f"vpr/serve/templates/page.html has placeholders {sorted(found)}, "
                           f"render_page fills {sorted(values)}")
    # One pass, so a value is never searched for placeholders itself.
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
