"""Fetching the freely downloadable benchmarks: resumable HTTP, safe unpacking, conversion."""

from vpr.datatools.fetch.benchmark import download_benchmark, manual_steps
from vpr.datatools.fetch.errors import FetchError
from vpr.datatools.fetch.http import fetch_url
from vpr.datatools.fetch.sources import SOURCES, RawSource, RemoteFile
from vpr.datatools.fetch.unpack import safe_unpack

__all__ = ["SOURCES", "FetchError", "RawSource", "RemoteFile", "download_benchmark",
           "fetch_url", "manual_steps", "safe_unpack"]
