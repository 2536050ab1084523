"""Streaming one URL to disk: a ``.part`` file beside the target, resumed with HTTP Range.

A download writes ``<target>.part`` and renames it to ``<target>`` only once the size (and
the sha256 when known) is right, so a half file never passes for a whole one. An interrupted
download keeps its ``.part``; the next call asks the server for the rest
(``Range: bytes=<size of .part>-``) and appends when the server answers 206, or starts over
when it answers 200 (a server without range support).
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from vpr.datatools.fetch.errors import FetchError
from vpr.utils.hashing import file_sha256 as sha256_of

CHUNK_BYTES = 1 << 20
USER_AGENT = "vpr-download"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def part_path(target: Path) -> Path:
    """Where the download of ``target`` grows until it is complete."""
    return target.with_name(target.name + ".part")


def _complete(target: Path, size: int | None, sha256: str | None) -> bool:
    if not target.is_file():
        return False
    if size is not None and target.stat().st_size != size:
        return False
    return sha256 is None or sha256_of(target) == sha256


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def fetch_url(url: str, target: str | Path, size: int | None = None,
              sha256: str | None = None, progress: bool = True,
              timeout: float = 60.0) -> Path:
    """Downloads ``url`` to ``target`` (resuming a ``.part`` left by an earlier attempt).

    Args:
        url: http(s) address.
        target: the file to produce.
        size: expected bytes, when known (else the server's Content-Length is checked).
        sha256: expected hex digest, when known.
        progress: show a progress bar.
        timeout: seconds to wait for the server at each step.

    Returns:
        ``target``; one already complete is not downloaded again.

    Raises:
        FetchError: unreachable server, HTTP error, interrupted transfer (the ``.part`` is
            kept for the next attempt), or a size/sha256 mismatch (the ``.part`` is removed).
    """
    from tqdm.auto import tqdm

    target = Path(target)
    if _complete(target, size, sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = part_path(target)
    offset = partial.stat().st_size if partial.is_file() else 0
    if size is not None and offset > size:
        partial.unlink()
        offset = 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset and size is not None and offset == size:
            response = None  # the .part already holds every byte
        else:
            raise FetchError(f"{url}: the server answered HTTP {error.code} ({error.reason})"
                             ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(f"{url}: cannot connect ({reason})") from None
    if response is not None:
        with response:
            expected_total, cut = _receive(response, url, partial, offset, progress, tqdm)
        received = partial.stat().st_size
        if cut or (expected_total is not None and received < expected_total):
            of = f" of {expected_total}" if expected_total is not None else ""
            raise FetchError(f"{url}: the transfer stopped at {received}{of} bytes; {partial} "
                             "is kept, run the same command again to resume")
        if expected_total is not None and size is None:
            size = expected_total
    received = partial.stat().st_size
    if size is not None and received != size:
        partial.unlink()
        raise FetchError(f"{url}: got {received} bytes, expected {size}; the partial file was "
                         "removed, run the same command again")
    if sha256 is not None and sha256_of(partial) != sha256:
        partial.unlink()
        raise FetchError(f"{url}: sha256 differs from the expected {sha256[:12]}...; the file "
                         "was removed (corrupt or changed upstream)")
    os.replace(partial, target)
    return target


def _receive(response, url: str, partial: Path, offset: int, progress: bool,
             tqdm) -> tuple[int | None, bool]:
    """Writes the body into ``partial``.

    Returns:
        The full file size the server announced (None when it did not) and whether the
        connection broke before the end (a chunked body has no size to compare with).
    """
    status = getattr(response, "status", 200)
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if offset and status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if not match or int(match[1]) != offset:
            raise FetchError(f"{url}: the server resumed at another byte than {offset} "
                             f"(Content-Range {response.headers.get('Content-Range')!r})")
        total = int(match[3]) if match[3] != "*" else None
        mode = "ab"
    else:
        # 200: the server ignored the range (or there was none): start from the beginning.
        offset, mode = 0, "wb"
        total = length
    if total is None and length is not None:
        total = offset + length
    bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=partial.name[:-5],
               disable=not progress)
    cut = False
    try:
        with open(partial, mode) as file:
            while True:
                try:
                    block = response.read(CHUNK_BYTES)
                except (http.client.IncompleteRead, ConnectionError, TimeoutError) as error:
                    if isinstance(error, http.client.IncompleteRead) and error.partial:
                        file.write(error.partial)
                    cut = True
                    break
                if not block:
                    break
                file.write(block)
                bar.update(len(block))
    finally:
        bar.close()
    return total, cut
