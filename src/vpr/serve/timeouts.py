"""Slow clients are cut off: headers and body must arrive within ``read_timeout`` seconds.

Without a bound, a client that sends a request one byte a second holds a connection (and
the part of the body received so far) for as long as it likes; a few hundred of them
exhaust the server. Headers are bounded in the HTTP protocol (the app only sees complete
headers): `ReadTimeoutH11Protocol` answers 408 and closes a connection whose request head
is not complete ``read_timeout`` seconds after its first byte (or after the connection
opened). The body is bounded by `body_receiver` in the upload middleware.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from vpr.serve.defaults import DEFAULT_READ_TIMEOUT_S


class ReadTimeout(Exception):
    """The client did not send its request in time."""


def timeout_response(read_timeout: float) -> bytes:
    """A complete HTTP/1.1 408 response that closes the connection."""
    body = json.dumps({"detail": f"request not received within {read_timeout:g} s "
                                 "(vpr serve --read_timeout)"}).encode()
    head = ("HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class ReadTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline on each request's head (subclass per value)."""

    read_timeout: float = DEFAULT_READ_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.read_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_head():
            self._arm()  # the first byte of a new request on a kept-alive connection
        super().data_received(data)
        if not self._waiting_for_head():
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()  # idle keep-alive connections have uvicorn's own timeout
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._waiting_for_head() and not self.transport.is_closing():
            self.transport.write(timeout_response(self.read_timeout))
            self.transport.close()


def protocol_with_timeout(read_timeout: float) -> type[H11Protocol]:
    """A `ReadTimeoutH11Protocol` class with this timeout (uvicorn takes a class)."""
    return type("ReadTimeoutH11Protocol", (ReadTimeoutH11Protocol,),
                {"read_timeout": float(read_timeout)})


def body_receiver(receive: Callable[[], Awaitable[dict[str, Any]]], read_timeout: float
                  ) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``receive`` that raises `ReadTimeout` once ``read_timeout`` s have passed in all."""
    deadline = time.monotonic() + read_timeout

    async def receive_in_time() -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReadTimeout
        try:
            return await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            raise ReadTimeout from None

    return receive_in_time
