"""Checking uploads before they reach the model: a body-size limit and an image check.

The size limit is an ASGI middleware, so that an oversized request is answered 413 before
its body is parsed or stored: from its Content-Length, or as soon as a chunked body passes
the limit. The rest of the body is then read and thrown away (up to a bound) before the
413 goes out: a server that closes a connection with unread data makes the kernel reset it,
and the client would see "connection reset" instead of the 413.

The image check decodes the upload fully (a truncated JPEG fails here, not in the model)
and only accepts common raster formats, so that no exotic decoder is reached.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image, UnidentifiedImageError

from vpr.serve.defaults import DEFAULT_MAX_PIXELS
from vpr.serve.timeouts import ReadTimeout, body_receiver

# Formats PIL may try on an upload; EPS and the like (external decoders) are never tried.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
# Room for the multipart boundaries, part headers and small form fields around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# An oversized body is discarded up to this many times the limit before the 413 is sent;
# past that the connection is closed at once (the client may then only see a reset).
DRAIN_FACTOR = 4


class UploadError(ValueError):
    """An upload the service refuses, with the HTTP status that says why."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def check_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Decodes an uploaded image completely and returns its format (``"JPEG"``...).

    Args:
        data: the uploaded bytes.
        max_pixels: larger images are refused before they are decoded.

    Raises:
        UploadError: 400 for an empty upload, 415 for something that is not an image of
            an accepted format, 422 for a damaged (e.g. truncated) or too large image.
    """
    if not data:
        raise UploadError(400, "empty upload: send a photo (JPEG, PNG, WebP...)")
    with pillow_errors(), Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise UploadError(422, f"image of {width} x {height} pixels is too large "
                                   f"(at most {max_pixels:,} pixels)")
        image.load()
        return str(image.format)


@contextmanager
def pillow_errors() -> Iterator[None]:
    """Turns what Pillow raises on an upload into the HTTP answer for it (415 or 422)."""
    try:
        yield
    except UnidentifiedImageError as error:
        raise UploadError(415, "not an image: send a photo "
                               f"({', '.join(ACCEPTED_FORMATS)})") from error
    except Image.DecompressionBombError as error:
        raise UploadError(422, f"image too large to decode ({error})") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise UploadError(422, f"damaged or truncated image ({error})") from error


async def _send_json(send: Any, status_code: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status_code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """ASGI middleware: request bodies over ``max_bytes`` get 413 before the app sees them.

    The body is read here (at most ``max_bytes`` of it kept) and replayed to the app, so the
    app never starts on a request that will turn out too large.

    Args:
        app: the ASGI app to protect.
        max_bytes: the largest body accepted.
        limit_text: how the limit is named in the error message (e.g. ``"20 MB"``).
        read_timeout: seconds the whole body may take to arrive; a slower one gets 408
            (None: no limit).
        path_limits: other limits for some paths, as ``{path: (max_bytes, limit_text)}``
            (e.g. a batch of photos may be larger than one photo).
    """

    def __init__(self, app: Any, max_bytes: int, limit_text: str,
                 read_timeout: float | None = None,
                 path_limits: dict[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limit_text = limit_text
        self.read_timeout = read_timeout
        self.path_limits = dict(path_limits or {})

    async def _refuse(self, receive: Any, send: Any, received: int, more_body: bool,
                      max_bytes: int, limit_text: str) -> None:
        """Discards the rest of the body (within the bound), then answers 413."""
        while more_body and received <= DRAIN_FACTOR * max_bytes:
            try:
                message = await receive()
            except ReadTimeout:
                break
            if message["type"] == "http.disconnect":
                return
            received += len(message.get("body", b""))
            more_body = message.get("more_body", False)
        await _send_json(send, 413, f"upload too large: the limit is {limit_text}")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wait_for_disconnect = receive
        if self.read_timeout is not None:
            receive = body_receiver(receive, self.read_timeout)
        try:
            body = await self._read_body(scope, receive, send)
        except ReadTimeout:
            await _send_json(send, 408, f"request body not received within "
                                        f"{self.read_timeout:g} s (vpr serve --read_timeout)")
            return
        if body is None:
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed, body
            if not replayed:
                replayed = True
                message = {"type": "http.request", "body": body, "more_body": False}
                body = b""  # the app holds the only reference from here on
                return message
            return await wait_for_disconnect()  # after the body: as usual

        await self.app(scope, replay, send)

    async def _read_body(self, scope: dict[str, Any], receive: Any, send: Any) -> bytes | None:
        """The request body, or None when the request was answered here (400, 413)."""
        max_bytes, limit_text = self.path_limits.get(
            scope.get("path", ""), (self.max_bytes, self.limit_text))
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_json(send, 400, "invalid Content-Length header")
                return None
            if declared > max_bytes:
                more = declared <= DRAIN_FACTOR * max_bytes
                await self._refuse(receive, send, 0, more, max_bytes, limit_text)
                return None
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > max_bytes:
                chunks.clear()
                await self._refuse(receive, send, received, message.get("more_body", False),
                                   max_bytes, limit_text)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        chunks.clear()
        return body
