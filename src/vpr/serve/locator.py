"""The service's one index and one model: locating uploaded photos, thumbnails of matches.

Everything heavy is loaded once, when the `Locator` is made. Requests run in a threadpool;
inference is guarded by a lock, so that concurrent requests share the one model and never
run it twice at once (torch already spreads one forward pass over the cores).
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
from vpr.locate.predict import DEFAULT_RADIUS_M, DEFAULT_TOP_K

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
        nprobe: lists visited per query, for ivf/ivfpq indexes (default: as built).
        runtime: a `vpr.export.runtime.RuntimeChoice` (torch, or the index's ONNX model).
    """

    def __init__(self, index_path: str | Path, ckpt_path: str | Path | None = None,
                 radius_m: float = DEFAULT_RADIUS_M, device: str = "auto",
                 nprobe: int | None = None, runtime: Any = None) -> None:
        self.index = LocationIndex.load(index_path, nprobe=nprobe)
        self.device = resolve_device(device)
        self.radius_m = radius_m
        logger.info("Loading the model of %s", self.index)
        self.model = self.index.load_model(ckpt_path, runtime=runtime)
        # Item number of each indexed path: the ids that /thumbnail/{id} accepts.
        self.item_of_path = {path: item for item, path in enumerate(self.index.paths)}
        self._lock = threading.Lock()
        self._workdir = tempfile.TemporaryDirectory(prefix="vpr-serve-")
        self.enlarged = functools.lru_cache(maxsize=ENLARGED_CACHED)(
            functools.partial(self._thumbnail, size=ENLARGED_SIZE))
        self.thumbnail = functools.lru_cache(maxsize=THUMBNAILS_CACHED)(self._thumbnail)

    def __len__(self) -> int:
        return len(self.index)

    def close(self) -> None:
        """Removes the folder of uploads in progress."""
        self._workdir.cleanup()

    def locate(self, data: bytes, photo_name: str, top_k: int = DEFAULT_TOP_K
               ) -> list[dict[str, Any]]:
        """Locates one uploaded photo (already checked to be an image).

        Returns:
            What `vpr locate --json` prints for that photo (a list of one result, from
            the same `LocateResult.to_dict`), with ``photo`` set to ``photo_name`` and the
            item number of each match in the index as its ``id``.
        """
        # locate() reads files: the upload goes to a private temporary file of our naming.
        handle, name = tempfile.mkstemp(suffix=".upload", dir=self._workdir.name)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            with self._lock:
                results = locate(name, self.index, top_k=top_k, radius_m=self.radius_m,
                                 device=self.device, model=self.model, batch_size=1)
        finally:
            Path(name).unlink(missing_ok=True)
        output = []
        for result in results:
            result.photo = photo_name
            payload = result.to_dict()
            for match in payload["matches"]:
                match["id"] = self.item_of_path.get(match["path"])
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
        # Only paths recorded in the index's meta.json are ever opened.
        try:
            image = open_rgb(self.index.paths[item])
        except BadImageError as error:
            logger.warning("thumbnail %d: %s", item, error)
            raise ThumbnailError(f"image {item} is not available") from error
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()
