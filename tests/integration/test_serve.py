"""`vpr serve`: the HTTP API on a tiny index, through a real uvicorn server on loopback."""

from __future__ import annotations

import argparse
import builtins
import io
import json
import logging
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
import utm
from PIL import Image

import vpr.locate.model_source
from vpr.locate import LocationIndex
from vpr.serve import create_app, serve_in_background
from vpr.serve.uploads import MULTIPART_OVERHEAD_BYTES

MAX_UPLOAD_MB = 0.5  # small, so that the oversize tests send little
MAX_UPLOAD_BYTES = int(MAX_UPLOAD_MB * 2**20)
TRAVERSAL = "../../etc/passwd"


@pytest.fixture(scope="module")
def service(served_world):
    """The app over the tiny index, served in a thread; counts the model loads."""
    loads = []
    real_load_model = vpr.locate.model_source.load_model

    def counting_load_model(*args, **kwargs):
        loads.append(args)
        return real_load_model(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vpr.locate.model_source, "load_model", counting_load_model)
        app = create_app(served_world["index"], top_k=3, max_upload_mb=MAX_UPLOAD_MB,
                         device="cpu")
        with serve_in_background(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield {"client": client, "url": url, "loads": loads,
                   "loads_at_start": len(loads)}


def database_images(served_world) -> list[Path]:
    return sorted(served_world["database"].iterdir())


def post_photo(client: httpx.Client, content: bytes, name: str = "photo.png", **options):
    return client.post("/locate", files={"file": (name, content, "application/octet-stream")},
                       **options)


def jpeg_bytes(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


# ---- locating


def test_a_database_image_comes_back_at_its_own_location(service, served_world):
    photo = database_images(served_world)[4]
    response = post_photo(service["client"], photo.read_bytes(), photo.name,
                          data={"top_k": "1"})
    assert response.status_code == 200, response.text
    [result] = response.json()
    match = result["matches"][0]
    assert match["path"] == str(photo.resolve()) and match["similarity"] == pytest.approx(1.0)
    # One match: the prediction is the photo's own position, to the centimetre.
    east, north = match["utm_east"], match["utm_north"]
    assert np.hypot(result["utm_east"] - east, result["utm_north"] - north) < 0.01
    latitude, longitude = utm.to_latlon(east, north, 32, "T")
    assert (result["latitude"], result["longitude"]) == pytest.approx((latitude, longitude))
    assert result["photo"] == photo.name
    # The id addresses that very image.
    assert match["id"] == LocationIndex.load(served_world["index"]).paths.index(match["path"])
    thumbnail = service["client"].get(f"/thumbnail/{match['id']}")
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (32, 32)


def test_default_top_k_and_query_parameter(service, served_world):
    photo = database_images(served_world)[7]
    [result] = post_photo(service["client"], jpeg_bytes(photo)).json()
    assert len(result["matches"]) == 3  # create_app(top_k=3)
    # The place's 3 images agree: the prediction is their mean, within a few metres.
    assert result["cluster_size"] == 3 and result["confidence"] == 1.0
    assert all(match["distance_to_prediction_m"] < 10 for match in result["matches"])
    [result] = post_photo(service["client"], jpeg_bytes(photo), params={"top_k": 5}).json()
    assert len(result["matches"]) == 5


def test_json_is_the_one_of_vpr_locate(service, served_world, capsys):
    from helpers.cli import run_cli

    photo = database_images(served_world)[2]
    [served] = post_photo(service["client"], photo.read_bytes(), photo.name).json()
    assert run_cli("locate", ["locate", str(photo), "--index", str(served_world["index"]),
                              "--top_k", "3", "--json", "--device", "cpu"]) == 0
    [printed] = json.loads(capsys.readouterr().out)
    # Same keys and values; the service names the photo by its upload name and adds ids.
    assert printed.pop("photo") == str(photo) and served.pop("photo") == photo.name
    indexed = LocationIndex.load(served_world["index"]).paths
    assert [match.pop("id") for match in served["matches"]] == [
        indexed.index(match["path"]) for match in printed["matches"]]
    assert served == printed


# ---- bad uploads


def test_bad_uploads_get_clear_client_errors(service, served_world):
    client = service["client"]
    photo = jpeg_bytes(database_images(served_world)[0])
    # A small file that would decode to 49 megapixels: refused before it is decoded.
    huge = io.BytesIO()
    Image.new("1", (7000, 7000)).save(huge, format="PNG")
    assert len(huge.getvalue()) < MAX_UPLOAD_BYTES
    cases = {
        "49 megapixels": (post_photo(client, huge.getvalue(), "huge.png"), 422),
        "text": (post_photo(client, b"just some text\n", "notes.txt"), 415),
        "truncated jpeg": (post_photo(client, photo[: len(photo) // 2], "cut.jpg"), 422),
        "empty file": (post_photo(client, b"", "empty.jpg"), 400),
        "no file": (client.post("/locate", data={"top_k": "3"}), 422),
        "empty body": (client.post("/locate", content=b""), 422),
        "not multipart": (client.post("/locate", content=photo,
                                      headers={"content-type": "image/jpeg"}), 422),
        "top_k 0": (post_photo(client, photo, data={"top_k": "0"}), 422),
        "top_k huge": (post_photo(client, photo, params={"top_k": "100000"}), 422),
    }
    for name, (response, status) in cases.items():
        assert response.status_code == status, (name, response.text)
        assert response.json()["detail"], name


def test_oversized_uploads_get_413(service):
    client = service["client"]
    big = b"\xff\xd8\xff" + bytes(MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES)
    # Declared size over the limit: refused from the header, before the body is read.
    assert post_photo(client, big, "big.jpg").status_code == 413
    # A chunked body (no Content-Length) is cut as soon as it passes the limit.
    chunked = client.post("/locate", content=iter([big[i:i + 65536]
                                                   for i in range(0, len(big), 65536)]),
                          headers={"content-type": "multipart/form-data; boundary=x"})
    assert chunked.status_code == 413
    # A file just over the limit inside a body under the body limit: refused by the route.
    just_over = b"\xff\xd8\xff" + bytes(MAX_UPLOAD_BYTES)
    response = post_photo(client, just_over, "over.jpg")
    assert response.status_code == 413 and "0.5 MB" in response.json()["detail"]
    # The service still works afterwards.
    assert client.get("/health").status_code == 200


def test_paths_in_any_parameter_are_refused_and_never_read(service, served_world, tmp_path,
                                                           monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-CONTENT")
    opened: list[str] = []
    real_open = builtins.open

    def spying_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spying_open)
    client = service["client"]
    photo = database_images(served_world)[0].read_bytes()
    attempts = []
    for path in (TRAVERSAL, str(secret), "..%2F..%2Fetc%2Fpasswd"):
        attempts += [
            client.get(f"/thumbnail/{path}"),
            client.get("/thumbnail/0", params={"path": path}),
            client.get("/health", params={"file": path}),
            client.get("/", params={"photo": path}),
            post_photo(client, photo, params={"top_k": path}),
            post_photo(client, photo, data={"top_k": path}),
            post_photo(client, photo, data={"path": path}),
            post_photo(client, photo, params={"path": path}),
            client.post("/locate", data={"file": path}),
            post_photo(client, photo, name=path),
            post_photo(client, b"not an image", name=path),
        ]
    attempts += [
        client.get("/thumbnail/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
        client.get("/thumbnail/-1"),
        client.get("/thumbnail/12"),  # one past the last image
        client.get("/thumbnail/1e3"),
    ]
    for response in attempts:
        assert 400 <= response.status_code < 500, (response.request.url, response.text)
        assert b"SECRET-CONTENT" not in response.content and b"root:" not in response.content
    assert not [name for name in opened if "passwd" in name or "secret" in name]


# ---- the rest of the API


def test_health_openapi_docs_and_page(service):
    client = service["client"]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["images"] == 12
    assert health["max_upload_mb"] == MAX_UPLOAD_MB and health["default_top_k"] == 3
    schema = client.get("/openapi.json").json()
    assert {"/locate", "/health", "/thumbnail/{match_id}"} <= set(schema["paths"])
    match_fields = schema["components"]["schemas"]["Match"]["properties"]
    assert {"id", "rank", "similarity", "latitude", "longitude"} <= set(match_fields)
    assert "swagger" in client.get("/docs").text.lower()
    page = client.get("/")
    assert page.status_code == 200 and 'id="photo"' in page.text
    # The page works offline: it loads nothing from elsewhere.
    assert "src=\"http" not in page.text and "default-src 'self'" in page.headers[
        "content-security-policy"]


def test_concurrent_requests_share_the_one_model(service, served_world):
    photos = database_images(served_world)
    results: dict[int, object] = {}
    loads_before = len(service["loads"])

    def worker(number: int) -> None:
        with httpx.Client(base_url=service["url"], timeout=60) as client:
            photo = photos[number % len(photos)]
            response = post_photo(client, photo.read_bytes(), photo.name)
            results[number] = (response.status_code, response.json(), photo)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 8
    for status, payload, photo in results.values():
        assert status == 200
        assert payload[0]["matches"][0]["path"] == str(photo.resolve())
    # The model was loaded once, at startup, and never again for a request.
    assert service["loads_at_start"] == 1 and len(service["loads"]) == loads_before


# ---- command line


def test_cli_serve_logs_its_url_and_defaults_to_loopback(served_world, monkeypatch, caplog):
    import vpr.serve.server
    from vpr.cli import serve as serve_cli

    parser = argparse.ArgumentParser(prog="vpr")
    serve_cli.add_parser(parser.add_subparsers())
    defaults = parser.parse_args(["serve", "--index", "x"])
    assert (defaults.host, defaults.port, defaults.max_upload_mb) == ("127.0.0.1", 8000, 20.0)

    started = []

    class FakeServer:
        def run(self, sockets):
            started.append(sockets[0].getsockname())

    monkeypatch.setattr(vpr.serve.server, "_server", lambda app, log_level: FakeServer())
    args = parser.parse_args(["serve", "--index", str(served_world["index"]), "--port", "0",
                              "--device", "cpu"])
    with caplog.at_level(logging.INFO, logger="vpr"):
        assert args.func(args) == 0
    host, port = started[0]
    assert host == "127.0.0.1" and port > 0
    assert f"http://127.0.0.1:{port}/" in caplog.text
