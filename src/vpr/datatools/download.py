"""The real datasets (GSV-XS, SF-XS, Tokyo-XS): fetch from Google Drive, unpack, check.

The fetching is a function passed in (:data:`Fetcher`), so tests and offline users can hand
over a local archive instead of downloading one.
"""

from __future__ import annotations

import socket
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from vpr.data.images import IMAGE_EXTENSIONS

DRIVE_IDS: dict[str, str] = {
    "gsv_xs": "1q7usSe9_5xV5zTfN-1In4DlmF5ReyU_A",
    "sf_xs": "1tQqEyt3go3vMh4fj_LZrRcahoTbzzH-y",
    "tokyo_xs": "15QB3VNKj93027UAQWv7pzFQO1JDCdZj2",
}
# Folders each dataset must have (relative to <out>/<name>), each holding images.
LAYOUT: dict[str, tuple[str, ...]] = {
    "gsv_xs": ("train",),
    "sf_xs": ("val/database", "val/queries", "test/database", "test/queries"),
    "tokyo_xs": ("test/database", "test/queries"),
}

# fetch(name, destination) downloads the archive of dataset `name` to `destination`.
Fetcher = Callable[[str, Path], Path]


class DownloadError(RuntimeError):
    """A dataset could not be fetched, unpacked or checked."""


def drive_url(name: str) -> str:
    """The Google Drive address of a dataset's archive (for a download by hand)."""
    return f"https://drive.google.com/uc?id={DRIVE_IDS[name]}"


def _network_reachable(host: str = "drive.google.com", timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def gdown_fetch(name: str, destination: Path) -> Path:
    """Downloads the archive of dataset ``name`` from Google Drive with gdown.

    Raises:
        DownloadError: gdown is missing, the network is unreachable, or Drive refused.
    """
    try:
        import gdown
    except ImportError:
        raise DownloadError(
            "downloading the datasets needs gdown: pip install gdown "
            "(or pip install 'vpr[download]')"
        ) from None
    if not _network_reachable():
        raise DownloadError(
            f"cannot reach drive.google.com: the network is unreachable. Download "
            f"{drive_url(name)} on a machine with internet access and run "
            f"`vpr download {name} --archive PATH`, or use the synthetic city (`vpr synth`)."
        )
    try:
        result = gdown.download(id=DRIVE_IDS[name], output=str(destination), quiet=False)
    except Exception as error:  # gdown raises many types (requests, its own, OSError)
        raise DownloadError(
            f"downloading {name} from {drive_url(name)} failed: {error}. If Google Drive "
            "limits downloads, fetch the file by hand and pass it with --archive."
        ) from error
    if result is None or not Path(destination).is_file():
        raise DownloadError(f"downloading {name} from {drive_url(name)} produced no file")
    return Path(destination)


def layout_problems(folder: Path, name: str) -> list[str]:
    """What is missing from an unpacked dataset (empty when its layout is complete)."""
    problems = []
    for part in LAYOUT[name]:
        path = folder / part
        if not path.is_dir():
            problems.append(f"{path} is missing")
        elif not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.rglob("*")):
            problems.append(f"{path} holds no images")
    return problems


def _members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's entries, without macOS metadata, refusing paths that leave the folder."""
    members = []
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts:
            raise DownloadError(f"unsafe path in archive: {info.filename!r}")
        if path.parts and (path.parts[0] == "__MACOSX" or path.name == ".DS_Store"):
            continue
        members.append(info)
    return members


def unpack(archive_path: Path, out: Path, name: str) -> Path:
    """Unpacks a dataset zip into ``out/name`` and returns that folder.

    The archive may hold ``name/...`` at its top level or the dataset's content directly.
    """
    try:
        archive = zipfile.ZipFile(archive_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise DownloadError(f"{archive_path}: not a readable zip archive ({error})") from None
    with archive:
        members = _members(archive)
        tops = {PurePosixPath(info.filename).parts[0] for info in members if info.filename}
        target = out if tops == {name} else out / name
        target.mkdir(parents=True, exist_ok=True)
        archive.extractall(target, members=members)
    return out / name


def download_dataset(
    name: str, out: Path, archive: Path | None = None, fetch: Fetcher = gdown_fetch,
    keep_archive: bool = False,
) -> Path:
    """Makes ``out/name`` hold dataset ``name`` in its expected layout.

    Args:
        name: ``gsv_xs``, ``sf_xs`` or ``tokyo_xs``.
        out: the datasets' root folder.
        archive: a zip already on disk; nothing is downloaded then.
        fetch: how to download the archive when ``archive`` is None.
        keep_archive: keep a downloaded zip next to the dataset.

    Returns:
        The dataset's folder. A folder that already has the full layout is left as it is.

    Raises:
        DownloadError: fetching, unpacking or the layout check failed.
    """
    if name not in DRIVE_IDS:
        raise DownloadError(f"unknown dataset {name!r}; choose from {', '.join(DRIVE_IDS)}")
    out = Path(out)
    folder = out / name
    if folder.is_dir() and not layout_problems(folder, name):
        return folder
    out.mkdir(parents=True, exist_ok=True)
    downloaded = None
    if archive is None:
        partial = out / f"{name}.zip.part"
        try:
            fetch(name, partial)
        except BaseException:
            partial.unlink(missing_ok=True)  # never leave half a download behind
            raise
        downloaded = out / f"{name}.zip"
        partial.replace(downloaded)
        archive = downloaded
    elif not Path(archive).is_file():
        raise DownloadError(f"{archive}: archive not found")
    unpack(Path(archive), out, name)
    problems = layout_problems(folder, name)
    if problems:
        raise DownloadError(
            f"{archive} did not unpack into the expected {name} layout: " + "; ".join(problems)
        )
    if downloaded is not None and not keep_archive:
        downloaded.unlink()
    return folder
