"""`vpr download` with local zip archives standing in for Google Drive."""

from __future__ import annotations

import argparse
import io
import sys
import types
import zipfile
from pathlib import Path

import pytest
from PIL import Image

import vpr.datatools.download as download
from vpr.cli import download as download_cli
from vpr.datatools.download import DownloadError, download_dataset, gdown_fetch, layout_problems


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 80, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_zip(path: Path, name: str, parts: tuple[str, ...] | None = None,
             top_folder: bool = True) -> Path:
    """A dataset archive holding one image in each of ``parts`` (default: the full layout)."""
    prefix = f"{name}/" if top_folder else ""
    with zipfile.ZipFile(path, "w") as archive:
        for part in parts if parts is not None else download.LAYOUT[name]:
            archive.writestr(f"{prefix}{part}/@1.0@2.0@@@@@@@@@@@@0001_X@.jpg", _jpeg())
        archive.writestr("__MACOSX/._junk", b"")
    return path


@pytest.mark.parametrize("top_folder", [True, False])
def test_local_archive_unpacks_into_the_layout(tmp_path, top_folder):
    archive = make_zip(tmp_path / "sf.zip", "sf_xs", top_folder=top_folder)
    folder = download_dataset("sf_xs", tmp_path / "data", archive=archive)
    assert folder == tmp_path / "data" / "sf_xs"
    assert layout_problems(folder, "sf_xs") == []
    assert not (tmp_path / "data" / "__MACOSX").exists()
    assert archive.is_file()  # a user's own archive is never deleted


def test_injected_fetch_downloads_then_cleans_up(tmp_path):
    calls = []

    def fetch(name: str, destination: Path) -> Path:
        calls.append(name)
        return make_zip(destination, name)

    out = tmp_path / "data"
    download_dataset("tokyo_xs", out, fetch=fetch)
    assert calls == ["tokyo_xs"]
    assert layout_problems(out / "tokyo_xs", "tokyo_xs") == []
    assert sorted(path.name for path in out.iterdir()) == ["tokyo_xs"]  # no zip left over
    # Already in place: nothing is fetched again.
    download_dataset("tokyo_xs", out, fetch=fetch)
    assert calls == ["tokyo_xs"]


def test_failed_fetch_leaves_no_partial_file(tmp_path):
    def fetch(name: str, destination: Path) -> Path:
        destination.write_bytes(b"half")
        raise DownloadError("connection reset")

    with pytest.raises(DownloadError, match="connection reset"):
        download_dataset("gsv_xs", tmp_path, fetch=fetch)
    assert list(tmp_path.iterdir()) == []


def test_incomplete_archive_is_reported(tmp_path):
    archive = make_zip(tmp_path / "t.zip", "tokyo_xs", parts=("test/database",))
    with pytest.raises(DownloadError, match="queries is missing"):
        download_dataset("tokyo_xs", tmp_path / "data", archive=archive)


def test_not_a_zip_and_unsafe_paths_are_refused(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="not a readable zip"):
        download_dataset("gsv_xs", tmp_path / "data", archive=tmp_path / "bad.zip")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr("../evil.txt", b"x")
    with pytest.raises(DownloadError, match="unsafe path"):
        download_dataset("gsv_xs", tmp_path / "data", archive=tmp_path / "evil.zip")
    assert not (tmp_path / "evil.txt").exists()


def test_missing_gdown_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)  # makes `import gdown` fail
    with pytest.raises(DownloadError, match="pip install gdown"):
        gdown_fetch("sf_xs", tmp_path / "sf.zip")


def test_unreachable_network_is_said_clearly(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", types.ModuleType("gdown"))
    monkeypatch.setattr(download, "_network_reachable", lambda *args, **kwargs: False)
    with pytest.raises(DownloadError, match="network is unreachable"):
        gdown_fetch("sf_xs", tmp_path / "sf.zip")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    download_cli.add_parser(parser.add_subparsers())
    return parser.parse_args(argv)


def test_cli_with_a_local_archive(tmp_path, capsys):
    archive = make_zip(tmp_path / "gsv.zip", "gsv_xs")
    args = _parse(["download", "gsv_xs", "--out", str(tmp_path / "data"),
                   "--archive", str(archive)])
    assert download_cli.run(args) == 0
    assert "gsv_xs: ready" in capsys.readouterr().out
    assert layout_problems(tmp_path / "data" / "gsv_xs", "gsv_xs") == []


def test_cli_archive_needs_one_dataset(tmp_path, capsys):
    args = _parse(["download", "--archive", str(tmp_path / "a.zip")])
    assert args.datasets == []
    assert download_cli.run(args) == 2
    assert "exactly one dataset" in capsys.readouterr().err
