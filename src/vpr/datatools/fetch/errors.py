"""The one error type of fetching: a line that names the file or URL and what to do."""

from __future__ import annotations


class FetchError(ValueError):
    """A download, a check of its size/sha256, or an unpacking failed."""
