"""Decoding uploads with bounded memory: few at a time, and no larger than the model needs.

A 40-megapixel upload decodes to 160 MB of RGBA; sixteen of them at once would take
gigabytes. So:

- at most ``max_decodes`` uploads are decoded at once (a semaphore); others wait. The
  service decodes on its own ``max_decodes`` threads rather than the request threadpool:
  each thread's malloc arena keeps the peak it reached, so decoding on any of the pool's
  40 threads would let memory grow with the number of threads that ever decoded;
- an image over ``max_pixels`` is refused from its header, before it is decoded;
- a JPEG much larger than the model's input is decoded at 1/2, 1/4 or 1/8 scale (libjpeg
  scales in the DCT: Pillow's draft mode), and any decoded image still over twice the
  model's size is shrunk at once by an integer factor (`Image.reduce`), so that only the
  small image lives on while the request waits for the model. Sizes are compared as the
  photo is displayed (a phone's sideways-stored photo has its EXIF orientation applied), and
  the reduced image is turned upright, since its PNG carries no EXIF.

An image within twice the model's size on each side (the usual case for the sizes vpr
trains at and the photos a page sends) is passed on as the uploaded bytes, untouched: its
result is exactly that of `vpr locate` on the same file.
"""

from __future__ import annotations

import asyncio
import io
import threading
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from vpr.data.images import apply_orientation, image_orientation, oriented_size
from vpr.serve.defaults import DEFAULT_MAX_DECODES, DEFAULT_MAX_PIXELS
from vpr.serve.uploads import ACCEPTED_FORMATS, UploadError, pillow_errors

# Images are kept at least this many times the model's input size before the model's own
# antialiased resize, so that the reduction changes the descriptor little.
KEEP_FACTOR = 2


class UploadDecoder:
    """Checks uploads and shrinks large ones, at most ``max_decodes`` at a time.

    Args:
        model_size: the model's input (height, width), or None for native-size models
            (then images are only checked, never shrunk).
        max_pixels: the pixel budget of one upload; larger images get 422 undecoded.
        max_decodes: uploads decoded at the same time; more wait their turn.
    """

    def __init__(self, model_size: tuple[int, int] | None,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_decodes: int = DEFAULT_MAX_DECODES) -> None:
        if max_decodes < 1:
            raise ValueError(f"max_decodes must be >= 1, got {max_decodes}")
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
        self.model_size = tuple(model_size) if model_size else None
        self.max_pixels = max_pixels
        self.max_decodes = max_decodes
        self._slots = threading.BoundedSemaphore(max_decodes)
        self._threads = ThreadPoolExecutor(max_decodes, thread_name_prefix="vpr-decode")

    async def prepare_async(self, data: bytes) -> tuple[bytes, str]:
        """`prepare` on one of the decoder's own threads (for the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.prepare,
                                                                data)

    def close(self) -> None:
        """Stops the decoding threads."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _keep_size(self) -> tuple[int, int] | None:
        """(width, height) an image may keep: KEEP_FACTOR times the model's input."""
        if self.model_size is None:
            return None
        height, width = self.model_size
        return KEEP_FACTOR * width, KEEP_FACTOR * height

    def prepare(self, data: bytes) -> tuple[bytes, str]:
        """The bytes to locate (the upload, or a reduced PNG of it) and the upload's format.

        Raises:
            UploadError: 400 empty, 415 not an image, 422 damaged or over the pixel budget.
        """
        if not data:
            raise UploadError(400, "empty upload: send a photo (JPEG, PNG, WebP...)")
        with self._slots, pillow_errors():
            return self._prepare(data)

    def _prepare(self, data: bytes) -> tuple[bytes, str]:
        keep = self._keep_size()
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            orientation = image_orientation(image)
            width, height = oriented_size(image, orientation)
            kind = str(image.format)
            if width * height > self.max_pixels:
                raise UploadError(422, f"image of {width} x {height} pixels is too large "
                                       f"(at most {self.max_pixels:,} pixels: vpr serve "
                                       "--max_pixels)")
            small = keep is None or (width <= keep[0] and height <= keep[1])
            # `keep` in the stored pixels' frame: a sideways-stored photo's sides are swapped.
            stored_keep = keep if keep is None or orientation < 5 else (keep[1], keep[0])
            if not small and kind == "JPEG":
                # Decodes at the smallest 1/2^k scale still at least `keep` on both sides.
                image.draft("RGB", stored_keep)
            image.load()  # a truncated file fails here, not in the model
            if small:  # passed on with its EXIF: the locating reader turns it upright
                return data, kind
            decoded = image if image.mode in ("RGB", "RGBA", "L") else image.convert("RGB")
            factor = min(decoded.width // stored_keep[0], decoded.height // stored_keep[1])
            reduced = decoded.reduce(factor) if factor >= 2 else decoded
            del decoded  # the full-size pixels go as soon as the small copy exists
            if reduced.mode != "RGB":
                reduced = reduced.convert("RGB")
            reduced = apply_orientation(reduced, orientation)  # the PNG keeps no EXIF
        buffer = io.BytesIO()
        reduced.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue(), kind

