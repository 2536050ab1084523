"""`vpr download NAME` for a free benchmark: fetch, check, unpack safely, then convert.

Everything lands under one root: ``ROOT/<raw folder>/`` holds the downloaded files and what
they unpack to, ``ROOT/<protocol>/`` the converted test set. Each step can be rerun: a
complete file is not fetched again, a ``.part`` is resumed, an archive already unpacked (its
``.unpacked-<name>`` marker exists) is not unpacked again, and the conversion checks what is
already in place.
"""

from __future__ import annotations

from pathlib import Path

from vpr.datatools.fetch.errors import FetchError
from vpr.datatools.fetch.http import fetch_url
from vpr.datatools.fetch.sources import SOURCES, RawSource
from vpr.datatools.fetch.unpack import safe_unpack


def manual_steps(name: str, source: RawSource, raw: Path, out: Path) -> str:
    """How to do by hand what `download_benchmark` does (for machines without network)."""
    files = "; ".join(
        f"{item.url} -> {raw / item.filename}"
        + (f" (unpack into {raw / item.unpack_into})" if item.unpack_into else "")
        for item in source.files)
    nested = "".join(f"; then unpack {raw / path} into {raw / into}"
                     for path, into in source.nested)
    return (f"on a machine with network fetch {files}{nested}; then run "
            f"`vpr data convert {name} {raw} --out {out}`")


def _unpack_once(archive: Path, folder: Path) -> None:
    marker = archive.parent / f".unpacked-{archive.name}"
    if marker.is_file():
        return
    try:
        safe_unpack(archive, folder)
    except FetchError as error:
        # A corrupt download must not be trusted again: the next run fetches it anew.
        archive.unlink(missing_ok=True)
        raise FetchError(f"{error}; {archive.name} was removed, run the same command again to "
                         "download it anew") from None
    marker.write_text("")


def download_benchmark(name: str, root: str | Path, progress: bool = True):
    """Downloads, unpacks and converts the free benchmark ``name`` under ``root``.

    Returns:
        The `ConvertReport` of the conversion into ``root/name``.

    Raises:
        FetchError: the set is not downloadable here, or a step failed (the message says
            which URL or file, and the manual steps when the network is the problem).
    """
    from vpr.datatools.convert import convert_dataset

    if name not in SOURCES:
        raise FetchError(f"{name} is not downloaded automatically; choose from "
                         f"{', '.join(sorted(SOURCES))}")
    source = SOURCES[name]
    root = Path(root)
    raw = root / source.raw_folder
    out = root / name
    for item in source.files:
        try:
            path = fetch_url(item.url, raw / item.filename, size=item.size, sha256=item.sha256,
                             progress=progress)
        except FetchError as error:
            raise FetchError(f"{error}. To finish by hand: "
                             f"{manual_steps(name, source, raw, out)}") from None
        if item.unpack_into is not None:
            _unpack_once(path, raw / item.unpack_into)
    for relative, into in source.nested:
        archive = raw / relative
        try:
            if not archive.is_file() and not (raw / f".unpacked-{archive.name}").is_file():
                raise FetchError(f"{archive}: not found after unpacking; expected it inside "
                                 f"the download ({source.source})")
            _unpack_once(archive, raw / into)
        except FetchError:
            # The inner archive comes from the outer ones: unpack those again next time.
            for item in source.files:
                (raw / f".unpacked-{item.filename}").unlink(missing_ok=True)
            raise
    return convert_dataset(name, raw, out, progress=progress)
