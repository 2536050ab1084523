"""`vpr serve` under load: bounded decodes and pixels, slow clients cut off, same results."""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from vpr.locate import LocationIndex, locate
from vpr.serve import create_app, serve_in_background
from vpr.serve.decoding import UploadDecoder
from vpr.serve.uploads import UploadError

READ_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def service(served_world):
    app = create_app(served_world["index"], top_k=3, device="cpu", max_decodes=1,
                     max_pixels=3_000_000, read_timeout=READ_TIMEOUT)
    with serve_in_background(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield {"client": client, "url": url, "app": app}


def post(client: httpx.Client, content: bytes, name: str = "photo.png") -> httpx.Response:
    return client.post("/locate", files={"file": (name, content, "application/octet-stream")})


def encoded(image: Image.Image, kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def address(url: str) -> tuple[str, int]:
    host_port = url.removeprefix("http://").rstrip("/")
    host, port = host_port.rsplit(":", 1)
    return host, int(port)


def read_response(sock: socket.socket, limit_s: float) -> bytes:
    sock.settimeout(limit_s)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received


# ---- results


def test_ordinary_uploads_give_exactly_the_results_of_vpr_locate(service, served_world):
    index = LocationIndex.load(served_world["index"])
    model = index.load_model()
    for photo in sorted(served_world["database"].iterdir())[::3]:
        for content, name in ((photo.read_bytes(), "a.png"),
                              (encoded(Image.open(photo).resize((60, 50)), "JPEG"), "b.jpg")):
            path = served_world["database"].parent / f"upload-{name}"
            path.write_bytes(content)
            expected = locate(path, index, top_k=3, device="cpu", model=model,
                              batch_size=1)[0].to_dict()
            response = post(service["client"], content, name)
            assert response.status_code == 200, response.text
            [served] = response.json()
            for match in served["matches"]:
                del match["id"]
            expected["photo"] = name
            assert served == json.loads(json.dumps(expected))


def test_a_large_upload_is_shrunk_and_still_finds_its_place(service, served_world):
    photo = sorted(served_world["database"].iterdir())[4]
    large = Image.open(photo).convert("RGB").resize((1600, 1200), Image.Resampling.NEAREST)
    for kind in ("PNG", "JPEG"):
        response = post(service["client"], encoded(large, kind, **(
            {"quality": 95} if kind == "JPEG" else {})), f"large.{kind.lower()}")
        assert response.status_code == 200, response.text
        assert response.json()[0]["matches"][0]["path"] == str(photo.resolve())


def test_over_the_pixel_budget_is_refused_undecoded(service):
    decoded = []
    real_load = Image.Image.load

    def spying_load(self):
        decoded.append(self.size)
        return real_load(self)

    big = encoded(Image.new("RGB", (2000, 1600)), "PNG")  # 3.2 MP > 3 MP
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Image.Image, "load", spying_load)
        response = post(service["client"], big)
    assert response.status_code == 422 and "--max_pixels" in response.json()["detail"]
    assert (2000, 1600) not in decoded


# ---- decoding: small, and few at a time


def test_large_images_are_decoded_small():
    decoder = UploadDecoder((32, 32))  # keeps 64 x 64 or more
    png = Image.new("RGBA", (1000, 800), (10, 20, 30, 255))
    data, kind = decoder.prepare(encoded(png, "PNG"))
    # reduce(min(1000 // 64, 800 // 64) = 12): ceil(1000 / 12) x ceil(800 / 12).
    assert kind == "PNG" and Image.open(io.BytesIO(data)).size == (84, 67)
    assert Image.open(io.BytesIO(data)).getpixel((5, 5)) == (10, 20, 30)
    # JPEG: libjpeg decodes at 1/8 (256 x 192, still >= 64 each side), then reduce(3).
    jpeg = encoded(Image.new("RGB", (2048, 1536), (200, 100, 50)), "JPEG")
    seen = []
    real_load = Image.Image.load

    def spying_load(self):
        seen.append(self.size)
        return real_load(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Image.Image, "load", spying_load)
        data, kind = decoder.prepare(jpeg)
    assert kind == "JPEG" and (256, 192) in seen and (2048, 1536) not in seen
    assert Image.open(io.BytesIO(data)).size == (86, 64)
    # Within twice the model's size: the very bytes uploaded.
    small = encoded(Image.new("RGB", (64, 60)), "JPEG")
    assert decoder.prepare(small) == (small, "JPEG")


def test_sixteen_bit_rgba_png_is_reduced_to_rgb():
    data = png_16bit_rgba(900, 700)  # Pillow cannot write 16-bit RGBA: written by hand
    assert Image.open(io.BytesIO(data)).size == (900, 700)
    out, kind = UploadDecoder((32, 32)).prepare(data)
    reduced = Image.open(io.BytesIO(out))
    # reduce(min(900 // 64, 700 // 64) = 10); 16-bit samples keep their top 8 bits.
    assert kind == "PNG" and reduced.mode == "RGB" and reduced.size == (90, 70)
    assert reduced.getpixel((3, 3)) == (40000 >> 8, 20000 >> 8, 10000 >> 8)


def png_16bit_rgba(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG (colour type 6, depth 16), written chunk by chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    row = b"\x00" + np.tile(np.array([40000, 20000, 10000, 65535], ">u2"), width).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height, 1)) + chunk(b"IEND", b""))


def test_no_more_than_max_decodes_at_once():
    class CountingDecoder(UploadDecoder):
        active = peak = 0
        guard = threading.Lock()

        def _prepare(self, data):
            with self.guard:
                CountingDecoder.active += 1
                CountingDecoder.peak = max(CountingDecoder.peak, CountingDecoder.active)
            time.sleep(0.05)
            with self.guard:
                CountingDecoder.active -= 1
            return data, "PNG"

    decoder = CountingDecoder((32, 32), max_decodes=2)
    threads = [threading.Thread(target=decoder.prepare, args=(b"x",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert CountingDecoder.peak == 2


def test_decoder_errors_keep_their_status():
    decoder = UploadDecoder((32, 32), max_pixels=100)
    for data, status in ((b"", 400), (b"text", 415),
                         (encoded(Image.new("RGB", (20, 20)), "PNG"), 422),
                         (encoded(Image.new("RGB", (9, 9)), "JPEG")[:100], 422)):
        with pytest.raises(UploadError) as caught:
            decoder.prepare(data)
        assert caught.value.status_code == status


# ---- slow clients


def test_a_body_sent_byte_by_byte_gets_408(service):
    body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n\r\n" \
        + b"x" * 200 + b"\r\n--b--\r\n"
    head = (f"POST /locate HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n").encode()
    started = time.monotonic()
    with socket.create_connection(address(service["url"]), timeout=5) as sock:
        sock.sendall(head)
        cut_off = False
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                cut_off = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > READ_TIMEOUT + 0.5:
                break
        response = read_response(sock, limit_s=3)
    elapsed = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 408"), (response, cut_off)
    assert b"--read_timeout" in response
    assert READ_TIMEOUT <= elapsed < READ_TIMEOUT + 4


def test_headers_sent_byte_by_byte_get_408(service):
    head = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"y" * 200
    started = time.monotonic()
    with socket.create_connection(address(service["url"]), timeout=5) as sock:
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
            if time.monotonic() - started > READ_TIMEOUT + 0.5:
                break
        response = read_response(sock, limit_s=3)
    elapsed = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 408"), response
    assert READ_TIMEOUT <= elapsed < READ_TIMEOUT + 4


def test_a_prompt_client_on_a_kept_alive_connection_is_not_cut(service):
    client = service["client"]
    for _ in range(3):
        assert client.get("/health").status_code == 200
        time.sleep(READ_TIMEOUT * 0.6)  # idle time is not request time
    assert client.get("/health").status_code == 200


def test_cli_has_the_limit_options():
    import argparse

    from vpr.cli import serve as serve_cli

    parser = argparse.ArgumentParser()
    serve_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", "--index", "x", "--max_decodes", "3", "--max_pixels",
                              "1000", "--read_timeout", "2.5"])
    assert (args.max_decodes, args.max_pixels, args.read_timeout) == (3, 1000, 2.5)
    defaults = parser.parse_args(["serve", "--index", "x"])
    from vpr.serve.decoding import DEFAULT_MAX_DECODES
    from vpr.serve.timeouts import DEFAULT_READ_TIMEOUT_S
    from vpr.serve.uploads import DEFAULT_MAX_PIXELS

    assert (defaults.max_decodes, defaults.max_pixels, defaults.read_timeout) == (
        DEFAULT_MAX_DECODES, DEFAULT_MAX_PIXELS, DEFAULT_READ_TIMEOUT_S)

