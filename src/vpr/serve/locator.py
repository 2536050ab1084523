"""The service's one index and one model: locating uploaded photos, thumbnails of matches.

Everything heavy is loaded once, when the `Locator` is made. Requests run in a threadpool.
With ``max_batch`` 1, inference is guarded by a lock, so that concurrent requests share the
one model and never run it twice at once (torch already spreads one forward pass over the
cores). With a larger ``max_batch``, requests that arrive within ``batch_window_ms`` of
each other are described in one forward pass (`vpr.serve.batching`), then searched, each
with its own top_k and geographic prior.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from vpr.data.images import BadImageError, open_rgb
from vpr.locate import LocationIndex, locate
from vpr.locate.index import resolve_device
from vpr.locate.predict import (
    DEFAULT_RADIUS_M,
    DEFAULT_TOP_K,
    GeoPrior,
    check_min_confidence,
    locate_descriptors,
    prior_ids,
)
from vpr.rerank.options import build_reranker
from vpr.serve.batching import Batcher

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256
THUMBNAILS_CACHED = 512
# The larger view of a match, beside the photo (page: click on a match); fewer are cached.
ENLARGED_SIZE = 1024
ENLARGED_CACHED = 32


class ThumbnailError(LookupError):
    """No thumbnail for that id: outside the index, or its image is unreadable."""


class Locator:
    """A loaded location index and its model, ready to locate uploaded photos.

    Args:
        index_path: a folder made by `vpr index build`.
        ckpt_path: where the index's checkpoint is now, if it moved (checked by sha256).
        radius_m: matches within this distance form a cluster.
        device: ``cpu``, ``cuda``... or ``auto``.
        precision: Lightning's name (``auto``, ``32-true``, ``16-mixed``, ``bf16-mixed``), as
            every command's ``--precision`` (`vpr.hardware.autocast`).
        nprobe: lists visited per query, for ivf/ivfpq indexes (default: as built).
        max_batch: the most requests described in one forward pass (1: one at a time).
        batch_window_ms: how long a request waits for others to share its forward pass.
        rerank: re-ranking settings (`vpr.rerank.options.rerank_settings`), or None.
        runtime: a `vpr.export.runtime.RuntimeChoice` (torch, or the index's ONNX model).
        min_confidence: a prediction with a lower confidence is answered as unknown, as
            `vpr locate --min_confidence` does (None: always give the prediction); a
            request may ask for another.
    """

    def __init__(self, index_path: str | Path, ckpt_path: str | Path | None = None,
                 radius_m: float = DEFAULT_RADIUS_M, device: str = "auto",
                 nprobe: int | None = None, max_batch: int = 1,
                 batch_window_ms: float = 0.0, rerank: dict[str, Any] | None = None,
                 runtime: Any = None, min_confidence: float | None = None,
                 precision: str | None = "auto") -> None:
        check_min_confidence(min_confidence)
        self.min_confidence = min_confidence
        self.index = LocationIndex.load(index_path, nprobe=nprobe)
        self.device = resolve_device(device)
        self.precision = precision
        self.radius_m = radius_m
        logger.info("Loading the model of %s", self.index)
        self.model = self.index.load_model(ckpt_path, runtime=runtime)
        self.reranker = build_reranker(rerank, self.model) if rerank else None
        self._lock = threading.Lock()
        self._workdir = tempfile.TemporaryDirectory(prefix="vpr-serve-")
        self.enlarged = functools.lru_cache(maxsize=ENLARGED_CACHED)(
            functools.partial(self._thumbnail, size=ENLARGED_SIZE))
        self.thumbnail = functools.lru_cache(maxsize=THUMBNAILS_CACHED)(self._thumbnail)
        self.batcher = Batcher(self._locate_batch, max_batch, batch_window_ms / 1e3) \
            if max_batch > 1 else None
        # Photos of different sizes cannot share a batch: native-size models go one by one.
        self._batchable = bool(self.index.meta["model"].get("image_size"))

    def __len__(self) -> int:
        return len(self.index)

    def close(self) -> None:
        """Stops the batcher; removes the folder of uploads in progress."""
        if self.batcher is not None:
            self.batcher.close()
        self._workdir.cleanup()

    def _locate_batch(self, jobs: list[tuple[str, int, GeoPrior | None, float | None]]
                      ) -> list[Any]:
        """Results (or errors) of several uploaded photos, described in one forward pass.

        A job is (photo file, top_k, prior, min_confidence).
        """
        from vpr.eval.extract import ImageFolderDataset, extract_descriptors

        outcomes: list[Any] = [None] * len(jobs)
        wanted = []
        for number, (_, _, prior, _) in enumerate(jobs):
            try:
                prior_ids(self.index, prior)  # no image near the fix: this request's error
                wanted.append(number)
            except ValueError as error:
                outcomes[number] = error
        if not wanted:
            return outcomes
        paths = [jobs[number][0] for number in wanted]
        descriptors = extract_descriptors(
            self.model, ImageFolderDataset(paths, reader=self.index.reader(self.device)),
            batch_size=len(paths) if self._batchable else 1, device=self.device,
            precision=self.precision, progress=False)
        # Searched together where they ask the same: one search call per (top_k, prior,
        # min_confidence).
        groups: dict[tuple[int, GeoPrior | None, float | None], list[int]] = {}
        for row, number in enumerate(wanted):
            groups.setdefault(jobs[number][1:], []).append(row)
        for (top_k, prior, min_confidence), rows in groups.items():
            results = locate_descriptors(descriptors[rows], [paths[row] for row in rows],
                                         self.index, top_k, self.radius_m, prior,
                                         self.reranker, min_confidence)
            for row, result in zip(rows, results):
                outcomes[wanted[row]] = [result]
        return outcomes

    def locate(self, data: bytes, photo_name: str, top_k: int = DEFAULT_TOP_K,
               prior: GeoPrior | None = None, min_confidence: float | None = None
               ) -> list[dict[str, Any]]:
        """Locates one uploaded photo (already checked to be an image).

        ``min_confidence`` replaces the service's for this photo (None: the service's).

        Returns:
            What `vpr locate --json` prints for that photo (a list of one result, from
            the same `LocateResult.to_dict`), with ``photo`` set to ``photo_name`` and the
            item number of each match in the index as its ``id``.
        """
        # locate() reads files: the upload goes to a private temporary file of our naming.
        if min_confidence is None:
            min_confidence = self.min_confidence
        check_min_confidence(min_confidence)
        handle, name = tempfile.mkstemp(suffix=".upload", dir=self._workdir.name)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            if self.batcher is not None:
                results = self.batcher((name, top_k, prior, min_confidence))
            else:
                with self._lock:
                    results = locate(name, self.index, top_k=top_k, radius_m=self.radius_m,
                                     device=self.device, model=self.model, batch_size=1,
                                     precision=self.precision, prior=prior,
                                     reranker=self.reranker, min_confidence=min_confidence)
        finally:
            Path(name).unlink(missing_ok=True)
        output = []
        for result in results:
            result.photo = photo_name
            payload = result.to_dict()
            for match in payload["matches"]:
                match["id"] = self.index.store.id_of(match["path"])
            output.append(payload)
        return output

    def _thumbnail(self, item: int, size: int = THUMBNAIL_SIZE) -> bytes:
        """A JPEG of at most ``size`` pixels a side of indexed image ``item``.

        Raises:
            ThumbnailError: ``item`` is not an index item, or its image cannot be read.
        """
        if not 0 <= item < len(self.index):
            raise ThumbnailError(f"no image {item}: the index has images 0 to "
                                 f"{len(self.index) - 1}")
        # Only paths recorded in the index's store are ever opened.
        try:
            image = open_rgb(self.index.paths[item])
        except BadImageError as error:
            logger.warning("thumbnail %d: %s", item, error)
            raise ThumbnailError(f"image {item} is not available") from error
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()
