"""`vpr download NAME` for the free benchmarks, against a local HTTP server on 127.0.0.1.

The server (http.server in a thread, started here) serves tiny fabricated archives in the
upstream layouts; it can cut a transfer short once, ignore Range headers, or serve a corrupt
archive. Nothing here touches the internet.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vpr.datatools.fetch.benchmark as fetch_benchmark
from vpr.cli import main
from vpr.data.datasets import RetrievalSet
from vpr.data.geotag import parse_filename
from vpr.datatools.fetch import FetchError, RawSource, RemoteFile, fetch_url, safe_unpack


class _Files:
    """What the server serves and how it misbehaves."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_once: set[str] = set()
        self.chunked_cut_once: set[str] = set()
        self.ranges = True
        self.requests: list[tuple[str, str | None]] = []


def _handler(state: _Files):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            state.requests.append((self.path, self.headers.get("Range")))
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start, status = 0, 200
            match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
            if state.ranges and match:
                start, status = int(match[1]), 206
                if start >= len(body):
                    self.send_error(416)
                    return
            chunk = body[start:]
            if self.path in state.chunked_cut_once:
                # A chunked body (no Content-Length) that breaks off after one chunk.
                state.chunked_cut_once.discard(self.path)
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                half = chunk[: len(chunk) // 2]
                self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(status)
            self.send_header("Content-Length", str(len(chunk)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            if self.path in state.cut_once:
                # Announce every byte, send half, hang up: an interrupted transfer.
                state.cut_once.discard(self.path)
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(chunk)

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def server():
    state = _Files()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# ---------------------------------------------------------------- fetch_url


def test_an_interrupted_download_resumes_with_a_range_request(server, tmp_path: Path):
    body = np.random.default_rng(0).bytes(300_000)
    server.files["/big.bin"] = body
    server.cut_once.add("/big.bin")
    target = tmp_path / "big.bin"
    digest = hashlib.sha256(body).hexdigest()
    with pytest.raises(FetchError, match="run the same command again to resume"):
        fetch_url(f"{server.url}/big.bin", target, sha256=digest, progress=False)
    partial = tmp_path / "big.bin.part"
    kept = partial.stat().st_size
    assert 0 < kept < len(body) and not target.exists()
    fetch_url(f"{server.url}/big.bin", target, sha256=digest, progress=False)
    assert target.read_bytes() == body and not partial.exists()
    assert server.requests[-1] == ("/big.bin", f"bytes={kept}-")
    # Complete already: not fetched again.
    fetch_url(f"{server.url}/big.bin", target, sha256=digest, progress=False)
    assert len(server.requests) == 2


def test_a_chunked_body_that_breaks_off_is_never_taken_for_a_whole_file(server,
                                                                        tmp_path: Path):
    body = np.random.default_rng(1).bytes(50_000)
    server.files["/c.bin"] = body
    server.chunked_cut_once.add("/c.bin")
    target = tmp_path / "c.bin"
    with pytest.raises(FetchError, match="stopped at 25000 bytes"):
        fetch_url(f"{server.url}/c.bin", target, progress=False)
    assert not target.exists() and (tmp_path / "c.bin.part").stat().st_size == 25_000
    fetch_url(f"{server.url}/c.bin", target, progress=False)
    assert target.read_bytes() == body
    assert server.requests[-1] == ("/c.bin", "bytes=25000-")


def test_a_server_without_ranges_starts_over(server, tmp_path: Path):
    body = b"0123456789" * 1000
    server.files["/f.bin"] = body
    server.ranges = False
    target = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes from another attempt")
    fetch_url(f"{server.url}/f.bin", target, size=len(body), progress=False)
    assert target.read_bytes() == body


def test_size_and_sha256_mismatches_remove_the_partial_file(server, tmp_path: Path):
    server.files["/f.bin"] = b"abc" * 100
    target = tmp_path / "f.bin"
    with pytest.raises(FetchError, match="sha256 differs"):
        fetch_url(f"{server.url}/f.bin", target, sha256="0" * 64, progress=False)
    assert not target.exists() and not (tmp_path / "f.bin.part").exists()
    with pytest.raises(FetchError, match="got 300 bytes, expected 301"):
        fetch_url(f"{server.url}/f.bin", target, size=301, progress=False)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_url(f"{server.url}/missing", target, progress=False)


# ---------------------------------------------------------------- safe_unpack


def _hostile_zip_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _hostile_tar(kind: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        if kind == "dotdot":
            info = tarfile.TarInfo("images/../../evil.txt")
            info.size = 4
            archive.addfile(info, io.BytesIO(b"evil"))
        elif kind == "absolute":
            info = tarfile.TarInfo("/tmp/vpr-evil.txt")
            info.size = 4
            archive.addfile(info, io.BytesIO(b"evil"))
        elif kind == "symlink":
            info = tarfile.TarInfo("images/escape")
            info.type, info.linkname = tarfile.SYMTYPE, "../../outside"
            archive.addfile(info)
        elif kind == "hardlink":
            info = tarfile.TarInfo("images/escape")
            info.type, info.linkname = tarfile.LNKTYPE, "../outside.txt"
            archive.addfile(info)
        elif kind == "device":
            info = tarfile.TarInfo("images/dev")
            info.type = tarfile.CHRTYPE
            archive.addfile(info)
    return buffer.getvalue()


@pytest.mark.parametrize("name, data", [
    ("dotdot.zip", _zip({"ok.txt": b"fine", "../evil.txt": b"evil"})),
    ("absolute.zip", _zip({"/tmp/vpr-evil.txt": b"evil"})),
    ("symlink.zip", _hostile_zip_symlink()),
    ("dotdot.tar", _hostile_tar("dotdot")),
    ("absolute.tar", _hostile_tar("absolute")),
    ("symlink.tar", _hostile_tar("symlink")),
    ("hardlink.tar", _hostile_tar("hardlink")),
    ("device.tar", _hostile_tar("device")),
])
def test_hostile_archive_members_are_refused_before_anything_is_written(tmp_path: Path, name,
                                                                         data):
    archive = tmp_path / name
    archive.write_bytes(data)
    target = tmp_path / "box" / "inside"
    with pytest.raises(FetchError, match="refusing member"):
        safe_unpack(archive, target)
    assert not any(target.iterdir())  # checked before anything was written
    assert not (tmp_path / "box" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_safe_unpack_keeps_nested_folders_and_inner_links(tmp_path: Path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("summer/00000.png")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"png"))
        link = tarfile.TarInfo("summer/latest.png")
        link.type, link.linkname = tarfile.SYMTYPE, "00000.png"
        archive.addfile(link)
    (tmp_path / "a.tar.gz").write_bytes(buffer.getvalue())
    safe_unpack(tmp_path / "a.tar.gz", tmp_path / "out")
    assert (tmp_path / "out" / "summer" / "latest.png").read_bytes() == b"png"


# ---------------------------------------------------------------- vpr download NAME


FRAMES = 8


def _nordland_files() -> dict[str, bytes]:
    names = [f"{index:05d}.png" for index in range(FRAMES)]
    # As download_nordland.py unpacks them: summer.tar.gz holds summer/, winter.tar.gz is
    # unpacked into RAW/winter (its frames at the top of the archive).
    summer = _tar_gz({f"summer/{name}": _png(i) for i, name in enumerate(names)})
    winter = _tar_gz({name: _png(100 + i) for i, name in enumerate(names)})
    kept = "\n".join(name for name in names if name != "00003.png").encode()
    return {"/summer.tar.gz": summer, "/winter.tar.gz": winter, "/cleanImageNames.txt": kept}


def _point_sources_at(monkeypatch, name: str, source: RawSource) -> None:
    monkeypatch.setitem(fetch_benchmark.SOURCES, name, source)


def _nordland_source(url: str) -> RawSource:
    return RawSource("nordland_raw", (
        RemoteFile(f"{url}/summer.tar.gz", "summer.tar.gz", unpack_into="."),
        RemoteFile(f"{url}/winter.tar.gz", "winter.tar.gz", unpack_into="winter"),
        RemoteFile(f"{url}/cleanImageNames.txt", "cleanImageNames.txt")))


def test_download_resumes_unpacks_and_converts_nordland(server, tmp_path: Path, monkeypatch,
                                                        capsys):
    server.files.update(_nordland_files())
    server.cut_once.add("/summer.tar.gz")
    _point_sources_at(monkeypatch, "nordland_2frames", _nordland_source(server.url))
    argv = ["download", "nordland_2frames", "--out", str(tmp_path), "--no_progress_bar"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("vpr: error: nordland_2frames:") and "resume" in error
    assert f"{server.url}/summer.tar.gz" in error and "vpr data convert nordland_2frames" in error
    assert main(argv) == 0
    summer = [header for path, header in server.requests if path == "/summer.tar.gz"]
    assert summer[0] is None and re.fullmatch(r"bytes=[1-9]\d*-", summer[1])  # resumed
    out = tmp_path / "nordland_2frames"
    test_set = RetrievalSet(out, None)
    assert len(test_set.database_paths) == len(test_set.query_paths) == FRAMES - 1
    frame = {p: int(parse_filename(p).tile_num) for p in test_set.database_paths}
    for query, found in zip(test_set.query_paths, test_set.positives_per_query):
        q = int(parse_filename(query).tile_num)
        assert sorted(frame[test_set.database_paths[i]] for i in found) == [
            d for d in range(FRAMES - 1) if abs(d - q) <= 2]
    assert json.loads((out / "vpr_dataset.json").read_text())["protocol"] == "nordland_2frames"
    # A second run fetches nothing and unpacks nothing again.
    seen = len(server.requests)
    assert main(argv) == 0
    assert len(server.requests) == seen


def test_a_corrupt_archive_is_reported_and_removed(server, tmp_path: Path, monkeypatch,
                                                    capsys):
    server.files["/SPEDTEST.zip"] = b"PK\x03\x04 this is not really a zip archive" * 10
    _point_sources_at(monkeypatch, "sped", RawSource("sped_raw", (
        RemoteFile(f"{server.url}/SPEDTEST.zip", "SPEDTEST.zip", unpack_into="."),)))
    assert main(["download", "sped", "--out", str(tmp_path), "--no_progress_bar"]) == 2
    error = capsys.readouterr().err.strip()
    assert "not a readable zip archive" in error and "was removed" in error
    assert "\n" not in error
    assert not (tmp_path / "sped_raw" / "SPEDTEST.zip").exists()
    # Fixed upstream: the next run downloads it anew and converts SPED.
    server.files["/SPEDTEST.zip"] = _zip({f"SPEDTEST/{part}/{i:05d}.jpg": _png(i + shift)
                                          for part, shift in (("ref", 0), ("query", 50))
                                          for i in range(3)})
    assert main(["download", "sped", "--out", str(tmp_path), "--no_progress_bar"]) == 0
    assert len(RetrievalSet(tmp_path / "sped", None).query_paths) == 3


def test_amstertime_archive_inside_an_archive(server, tmp_path: Path, monkeypatch):
    inner = _zip({**{f"new/{i:04d}.png": _png(i) for i in range(2)},
                  **{f"old/{i:04d}.jpg": _png(10 + i) for i in range(2)}})
    server.files["/data.zip"] = _zip({"AmsterTime-v1.0.zip": inner})
    _point_sources_at(monkeypatch, "amstertime", RawSource(
        "amstertime_raw", (RemoteFile(f"{server.url}/data.zip", "data.zip", unpack_into="."),),
        nested=(("AmsterTime-v1.0.zip", "."),)))
    assert main(["download", "amstertime", "--out", str(tmp_path), "--no_progress_bar"]) == 0
    test_set = RetrievalSet(tmp_path / "amstertime", None)
    assert [len(p) for p in test_set.positives_per_query] == [1, 1]


def test_without_network_one_line_names_the_url_and_the_manual_steps(tmp_path: Path,
                                                                      monkeypatch, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _point_sources_at(monkeypatch, "nordland", _nordland_source(f"http://127.0.0.1:{port}"))
    assert main(["download", "nordland", "--out", str(tmp_path), "--no_progress_bar"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "cannot connect" in error
    assert f"http://127.0.0.1:{port}/summer.tar.gz" in error
    assert "vpr data convert nordland" in error and "on a machine with network" in error


def test_sets_behind_a_form_say_where_to_ask(capsys):
    assert main(["download", "msls_val_740"]) == 2
    error = capsys.readouterr().err
    assert "needs a request form" in error and "mapillary.com/dataset/places" in error
    assert main(["download", "st_lucia"]) == 2
    assert "not fetched automatically" in capsys.readouterr().err
