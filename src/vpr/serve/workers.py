"""Several `vpr serve` processes on one port: each loads the index (memory-mapped) and model.

The parent binds the listening socket and starts ``workers`` processes (spawned, so none
inherits a half-initialised torch or SQLite from it); each builds the app from the same
options and accepts connections on the shared socket, so the kernel spreads connections
over them. The index's descriptors are a memory-mapped file: its pages are shared by the
processes through the page cache, not copied into each.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from typing import Any

from vpr.serve.server import bind, is_loopback, url_of

logger = logging.getLogger(__name__)


def _worker(app_options: dict[str, Any], sock: socket.socket, log_level: str) -> None:
    from vpr.serve.app import create_app
    from vpr.serve.server import _server

    logging.basicConfig(level=getattr(logging, log_level.upper()),
                        format="%(levelname)s: %(message)s")
    app = create_app(**app_options)
    _server(app, log_level).run(sockets=[sock])


def serve_workers(app_options: dict[str, Any], workers: int, host: str = "127.0.0.1",
                  port: int = 8000, log_level: str = "info") -> None:
    """Serves `create_app(**app_options)` from ``workers`` processes until interrupted.

    Raises:
        OSError: the address cannot be bound.
        ValueError: a worker died (e.g. it could not load the index).
    """
    sock = bind(host, port)
    url = url_of(sock)
    if not is_loopback(host):
        logger.warning("Listening on %s: reachable from other machines, with no "
                       "authentication. Use --host 127.0.0.1 to keep it local.", host)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(app_options, sock, log_level),
                                 name=f"vpr-serve-{number}", daemon=True)
                 for number in range(workers)]
    for process in processes:
        process.start()
    logger.info("vpr serve: open %s (API description: %sdocs), %d worker processes", url, url,
                workers)
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            dead = [process for process in processes if not process.is_alive()]
            if dead:
                raise ValueError(f"vpr serve worker {dead[0].name} stopped (exit code "
                                   f"{dead[0].exitcode}); see its log above")
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in processes:
            if process.is_alive():
                process.terminate()  # uvicorn finishes its requests on SIGTERM
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
        sock.close()
