"""Micro-batching: requests that arrive within a short window share one forward pass.

One model forward of B photos costs far less than B forwards of one (the weights are read
once, the matrix products are larger), so under concurrent load a request waits at most
``window_s`` for others to join it, up to ``max_batch`` of them, and one thread runs the
batch. Alone, a request waits ``window_s`` at most (a few milliseconds, against a forward
pass of tens). Each request gets its own answer, or its own exception.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from vpr.serve.defaults import DEFAULT_MAX_BATCH, DEFAULT_WINDOW_MS

logger = logging.getLogger(__name__)



class Batcher:
    """Runs ``process(jobs) -> results`` (one result, or exception, per job) on batches.

    Args:
        process: called on one thread with a list of jobs; returns a list of the same
            length whose items are each job's result, or an exception to raise for it.
        max_batch: the most jobs per call.
        window_s: how long the first job of a batch waits for others.
    """

    def __init__(self, process: Callable[[list[Any]], Sequence[Any]],
                 max_batch: int = DEFAULT_MAX_BATCH, window_s: float = DEFAULT_WINDOW_MS / 1e3
                 ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if window_s < 0:
            raise ValueError(f"the batching window must be >= 0, got {window_s}")
        self.process, self.max_batch, self.window_s = process, int(max_batch), float(window_s)
        self._queue: queue.Queue[tuple[Any, Future] | None] = queue.Queue()
        self.batch_sizes: list[int] = []  # for tests and logs: the size of each batch run
        self._thread = threading.Thread(target=self._run, name="vpr-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Any) -> Future:
        """Queues a job; its future gets the job's result (or exception)."""
        future: Future = Future()
        self._queue.put((job, future))
        return future

    def __call__(self, job: Any) -> Any:
        """Runs a job in the next batch and returns its result (blocking)."""
        return self.submit(job).result()

    def close(self) -> None:
        """Stops the batching thread once the queued jobs are done."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _collect(self) -> list[tuple[Any, Future]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self.window_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 \
                    else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._collect()
            if batch is None:
                return
            jobs = [job for job, _ in batch]
            self.batch_sizes.append(len(jobs))
            try:
                results = list(self.process(jobs))
                if len(results) != len(jobs):
                    raise RuntimeError(f"{len(jobs)} jobs gave {len(results)} results")
            except BaseException as error:  # every job of the batch gets the error
                logger.exception("a batch of %d requests failed", len(jobs))
                results = [error] * len(jobs)
            for (_, future), result in zip(batch, results):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
