"""Running the app with uvicorn: in the foreground (`vpr serve`) or in a background thread.

The listening socket is bound here, before uvicorn starts, so that the URL logged is the
one really listened on (port 0 picks a free port) and a port in use fails at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from vpr.serve.timeouts import protocol_with_timeout

logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1, localhost..."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one).

    Raises:
        OSError: the address cannot be bound (port in use, unknown host).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http URL a bound socket serves, e.g. ``http://127.0.0.1:8000/``."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _server(app: Any, log_level: str) -> uvicorn.Server:
    # One worker process: the model is loaded once, in this process.
    options: dict[str, Any] = {}
    read_timeout = getattr(getattr(app, "state", None), "read_timeout", None)
    if read_timeout is not None:
        options["http"] = protocol_with_timeout(read_timeout)
    config = uvicorn.Config(app, log_level=log_level, access_log=log_level == "debug",
                            timeout_keep_alive=5, **options)
    return uvicorn.Server(config)


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
          ) -> None:
    """Serves ``app`` until interrupted (Ctrl-C), logging the URL first."""
    sock = bind(host, port)
    url = url_of(sock)
    if not is_loopback(host):
        logger.warning("Listening on %s: reachable from other machines, with no "
                       "authentication. Use --host 127.0.0.1 to keep it local.", host)
    logger.info("vpr serve: open %s (API description: %sdocs)", url, url)
    _server(app, log_level).run(sockets=[sock])


@contextlib.contextmanager
def serve_in_background(app: Any, host: str = "127.0.0.1", port: int = 0,
                        log_level: str = "warning", timeout_s: float = 30.0) -> Iterator[str]:
    """Runs ``app`` in a daemon thread for the duration of a ``with`` block.

    Yields:
        The base URL, e.g. ``http://127.0.0.1:38017/``.
    """
    sock = bind(host, port)
    server = _server(app, log_level)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="vpr-serve")
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
