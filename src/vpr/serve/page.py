"""The single web page of `vpr serve`: pick or drop a photo, see where it was taken.

The page is ``page.html`` beside this module (with ``__PLACEHOLDERS__`` filled in here).
Self-contained: inline CSS and JavaScript, no external resource, so it works offline. The
map is an SVG drawn by the page from the matches' coordinates (same projection and marker
classes as `vpr.locate.render`); thumbnails come from ``/thumbnail/{id}``.
"""

from __future__ import annotations

import functools
import html
from importlib import resources

# The page's Content-Security-Policy: nothing is loaded from anywhere but this service.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' blob: data:; "
                           "style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                           "connect-src 'self'; base-uri 'none'; form-action 'self'")

# The page itself is package data (page.html, shipped by setuptools' package-data).
_PAGE_FILE = "page.html"


def render_page(images: int, top_k: int, max_top_k: int, max_upload_bytes: int) -> str:
    """The page, with the service's settings filled in.

    Args:
        images: how many images the index holds (shown in the header).
        top_k: the default number of matches.
        max_top_k: the largest number of matches the service accepts.
        max_upload_bytes: the upload size limit (also checked by the page before sending).
    """
    values = {
        "__IMAGES__": f"{images:,}",
        "__TOP_K__": str(int(top_k)),
        "__MAX_TOP_K__": str(int(max_top_k)),
        "__MAX_UPLOAD_BYTES__": str(int(max_upload_bytes)),
        "__MAX_UPLOAD_MB__": f"{max_upload_bytes / 2**20:g}",
    }
    page = _page_template()
    for placeholder, value in values.items():
        page = page.replace(placeholder, html.escape(value))
    return page


@functools.lru_cache(maxsize=1)
def _page_template() -> str:
    return resources.files("vpr.serve").joinpath(_PAGE_FILE).read_text(encoding="utf-8")
