"""Unpacking zip and tar archives without letting any member out of the target folder.

Every member is checked before anything is written: an absolute path, a ``..`` part, a
Windows drive, a link (zip symlink entries, tar symlinks and hard links) pointing outside the
folder, or a device/FIFO is refused with one line naming the member. Tar members are then
extracted with the standard library's ``data`` filter as a second guard.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from vpr.datatools.fetch.errors import FetchError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: Path) -> bool:
    """Whether the name of ``path`` says zip or tar."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _check_name(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise FetchError(f"{archive}: refusing member {name!r} (it would be written outside "
                         "the target folder)")
    return path


def _inside(folder: Path, relative: PurePosixPath) -> bool:
    return (folder / relative).resolve().is_relative_to(folder.resolve())


def _unpack_zip(archive: Path, folder: Path) -> None:
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise FetchError(f"{archive}: not a readable zip archive ({error})") from None
    with bundle:
        members = []
        for info in bundle.infolist():
            relative = _check_name(info.filename, archive)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise FetchError(f"{archive}: refusing member {info.filename!r} (a symbolic "
                                 "link)")
            if not _inside(folder, relative):
                raise FetchError(f"{archive}: refusing member {info.filename!r} (outside the "
                                 "target folder)")
            members.append((info, relative))
        try:
            for info, relative in members:
                destination = folder / relative
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(info) as source, open(destination, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise FetchError(f"{archive}: corrupt zip archive ({error})") from None


def _unpack_tar(archive: Path, folder: Path) -> None:
    try:
        bundle = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise FetchError(f"{archive}: not a readable tar archive ({error})") from None
    with bundle:
        try:
            members = bundle.getmembers()
        except (tarfile.TarError, OSError, EOFError) as error:
            raise FetchError(f"{archive}: corrupt tar archive ({error})") from None
        for member in members:
            relative = _check_name(member.name, archive)
            if not _inside(folder, relative):
                raise FetchError(f"{archive}: refusing member {member.name!r} (outside the "
                                 "target folder)")
            if member.issym() or member.islnk():
                link = PurePosixPath(member.linkname)
                base = relative.parent if member.issym() else PurePosixPath()
                if link.is_absolute() or not _inside(folder, base / link):
                    raise FetchError(f"{archive}: refusing member {member.name!r} (a link to "
                                     f"{member.linkname!r}, outside the target folder)")
            elif not (member.isfile() or member.isdir()):
                raise FetchError(f"{archive}: refusing member {member.name!r} (a device or "
                                 "FIFO)")
        try:
            bundle.extractall(folder, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            raise FetchError(f"{archive}: corrupt tar archive ({error})") from None


def safe_unpack(archive: str | Path, folder: str | Path) -> Path:
    """Unpacks a zip or tar (gz/bz2/xz) ``archive`` into ``folder``; returns ``folder``.

    Raises:
        FetchError: unreadable or corrupt archive, or a member that would leave ``folder``.
    """
    archive, folder = Path(archive), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if archive.name.lower().endswith(".zip"):
        _unpack_zip(archive, folder)
    else:
        _unpack_tar(archive, folder)
    return folder
