"""`vpr serve`: many photos in one request, the page's static files and the larger views."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from vpr.serve import create_app, serve_in_background

MAX_UPLOAD_MB = 0.25
MAX_BATCH_FILES = 4
MAX_BATCH_MB = 0.5


@pytest.fixture(scope="module")
def batch_service(served_world):
    app = create_app(served_world["index"], top_k=3, max_upload_mb=MAX_UPLOAD_MB,
                     max_batch_files=MAX_BATCH_FILES, max_batch_mb=MAX_BATCH_MB, device="cpu")
    with serve_in_background(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def photos(served_world) -> list[Path]:
    return sorted(served_world["database"].iterdir())


def parts(*files: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (name, content, "application/octet-stream")) for name, content in files]


def test_a_batch_answers_each_photo_as_locate_would_and_errors_stay_in_their_row(
        batch_service, served_world):
    client = batch_service
    images = photos(served_world)
    good = [(path.name, path.read_bytes()) for path in (images[0], images[4], images[9])]
    bad = ("notes.txt", b"just some text\n")
    response = client.post("/locate/batch", files=parts(good[0], bad, good[1], good[2]),
                           data={"top_k": "2"})
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [row["photo"] for row in rows] == [good[0][0], "notes.txt", good[1][0], good[2][0]]
    assert rows[1] == {"photo": "notes.txt", "error": {"status": 415, "detail": rows[1][
        "error"]["detail"]}} and "not an image" in rows[1]["error"]["detail"]
    for row, (name, content) in zip([rows[0], rows[2], rows[3]], good):
        [alone] = client.post("/locate", files=parts((name, content)),
                              data={"top_k": "2"}).json()
        assert row == alone and len(row["matches"]) == 2
        assert row["matches"][0]["path"] == str((served_world["database"] / name).resolve())


def test_batch_limits_count_size_and_fields(batch_service, served_world):
    client = batch_service
    content = photos(served_world)[0].read_bytes()
    five = parts(*[(f"p{n}.png", content) for n in range(MAX_BATCH_FILES + 1)])
    response = client.post("/locate/batch", files=five)
    assert response.status_code == 413 and "--max_batch_files" in response.json()["detail"]
    # One photo over --max_upload_mb: refused in its row, the other one answered.
    big = io.BytesIO()
    Image.effect_noise((400, 400), 64).convert("RGB").save(big, format="PNG")
    assert MAX_UPLOAD_MB * 2**20 < len(big.getvalue()) < MAX_BATCH_MB * 2**20
    rows = client.post("/locate/batch", files=parts(("big.png", big.getvalue()),
                                                    ("ok.png", content))).json()
    assert rows[0]["error"]["status"] == 413 and "0.25 MB" in rows[0]["error"]["detail"]
    assert rows[1]["photo"] == "ok.png" and rows[1]["matches"]
    # The whole body over --max_batch_mb: 413 before it is parsed.
    heavy = parts(*[(f"h{n}.png", big.getvalue()) for n in range(3)])
    response = client.post("/locate/batch", files=heavy)
    assert response.status_code == 413 and "--max_batch_mb" in response.json()["detail"]
    # A file name with a path: that row says so.
    rows = client.post("/locate/batch", files=parts(("../x.png", content))).json()
    assert rows[0]["error"]["status"] == 400
    assert client.post("/locate/batch", files=parts(("a.png", content)),
                       data={"path": "x"}).status_code == 422
    assert client.post("/locate/batch", data={"top_k": "2"}).status_code == 422
    health = client.get("/health").json()
    assert (health["max_batch_files"], health["max_batch_mb"]) == (MAX_BATCH_FILES, MAX_BATCH_MB)


def test_static_files_and_larger_views(batch_service):
    client = batch_service
    script = client.get("/static/leaflet/leaflet.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert b"Leaflet" in script.content[:200]
    marker = client.get("/static/leaflet/images/marker-icon.png")
    assert marker.status_code == 200 and marker.content.startswith(b"\x89PNG")
    assert "BSD 2-Clause" in client.get("/static/leaflet/LICENSE").text
    assert client.get("/static/page.js").status_code == 200
    # Only the shipped files: nothing else is reachable, however the path is written.
    for path in ("/static/../app.py", "/static/leaflet/../../app.py", "/static/%2e%2e/app.py",
                 "/static/leaflet", "/static/", "/static/static.py"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"def create_app" not in response.content
    view = client.get("/image/0")
    assert view.status_code == 200 and view.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(view.content)).size == (32, 32)  # never enlarged
    assert client.get("/image/12").status_code == 404
    # The page loads its script and map from here; only map tiles may come from elsewhere.
    page = client.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "https://tile.openstreetmap.org" in policy
    assert 'src="/static/leaflet/leaflet.js"' in page.text and "unpkg" not in page.text


def test_cli_batch_options_reach_the_app(served_world, monkeypatch):
    import argparse

    import vpr.serve
    from vpr.cli import serve as serve_cli

    parser = argparse.ArgumentParser(prog="vpr")
    serve_cli.add_parser(parser.add_subparsers())
    defaults = parser.parse_args(["serve", "--index", "x"])
    assert (defaults.max_batch_files, defaults.max_batch_mb) == (50, 100.0)
    seen = {}

    def fake_create_app(*index, **settings):
        seen.update(settings)
        return object()

    monkeypatch.setattr(vpr.serve, "create_app", fake_create_app)
    monkeypatch.setattr(vpr.serve, "serve", lambda app, **options: None)
    args = parser.parse_args(["serve", "--index", str(served_world["index"]),
                              "--max_batch_files", "7", "--max_batch_mb", "12.5"])
    assert args.func(args) == 0
    assert (seen["max_batch_files"], seen["max_batch_mb"]) == (7, 12.5)
    with pytest.raises(ValueError, match="max_batch_files"):
        create_app(served_world["index"], max_batch_files=0, device="cpu")
