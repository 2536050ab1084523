"""The FastAPI app of `vpr serve`: ``POST /locate`` (and ``/locate/batch``), the page, images.

Rules that hold for every request:

- the index and the model are loaded once, in `create_app`; requests share them;
- bodies over the upload limit are refused with 413 before they are parsed, and a body
  (or request head) slower than ``read_timeout`` gets 408;
- at most ``max_decodes`` uploads are decoded at once, over ``max_pixels`` none, and large
  ones are shrunk to what the model needs right after decoding (`vpr.serve.decoding`);
- an upload that is not a readable image gets a 4xx (400 empty, 415 not an image, 422
  damaged), never a 500;
- no value from a request ever reaches the file system: thumbnails are addressed by the
  item number of an indexed image, uploads are written under names the service makes, the
  page's static files are served from memory by exact name;
- a batch holds at most ``max_batch_files`` photos and ``max_batch_mb`` in all; each photo
  is checked as a single upload would be, and one that is refused gets its error in its own
  row while the others are located;
- unknown query parameters and form fields are refused (422) rather than ignored.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParameter
from fastapi.responses import HTMLResponse, JSONResponse, Response

import vpr
from vpr.locate.predict import DEFAULT_RADIUS_M, DEFAULT_TOP_K
from vpr.serve.decoding import UploadDecoder
from vpr.serve.defaults import (
    DEFAULT_MAX_BATCH_FILES,
    DEFAULT_MAX_BATCH_MB,
    DEFAULT_MAX_DECODES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_READ_TIMEOUT_S,
)
from vpr.serve.forms import (
    DEFAULT_NEAR_RADIUS_M,
    FORM_FIELDS,
    MAX_NAME_LENGTH,
    MAX_TOP_K,
    reject_unknown_query,
)
from vpr.serve.locate_routes import add_locate_routes
from vpr.serve.locator import Locator, ThumbnailError
from vpr.serve.page import CONTENT_SECURITY_POLICY, render_page
from vpr.serve.schemas import BatchErrorDetail, BatchErrorOut, Health, LocateOut, MatchOut
from vpr.serve.static import load_static_files
from vpr.serve.uploads import MULTIPART_OVERHEAD_BYTES, BodySizeLimit, UploadError

# The form checks (forms.py), answer schemas (schemas.py) and locate endpoints
# (locate_routes.py) moved out of this module; their names stay importable from here.
__all__ = [
    "DEFAULT_MAX_BATCH_FILES", "DEFAULT_MAX_BATCH_MB", "DEFAULT_MAX_UPLOAD_MB",
    "DEFAULT_NEAR_RADIUS_M", "FORM_FIELDS", "MAX_NAME_LENGTH", "MAX_TOP_K", "BatchErrorDetail",
    "BatchErrorOut", "Health", "LocateOut", "MatchOut", "create_app",
]

logger = logging.getLogger(__name__)



def create_app(
    index_path: str | Path,
    ckpt_path: str | Path | None = None,
    top_k: int = DEFAULT_TOP_K,
    radius_m: float = DEFAULT_RADIUS_M,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    device: str = "auto",
    nprobe: int | None = None,
    max_decodes: int = DEFAULT_MAX_DECODES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_batch_files: int = DEFAULT_MAX_BATCH_FILES,
    max_batch_mb: float = DEFAULT_MAX_BATCH_MB,
    read_timeout: float | None = DEFAULT_READ_TIMEOUT_S,
    max_batch: int = 1,
    batch_window_ms: float = 0.0,
    rerank: dict[str, Any] | None = None,
    runtime: Any = None,
    min_confidence: float | None = None,
    precision: str | None = "auto",
) -> FastAPI:
    """Loads the index and its model once and returns the service's app.

    Args:
        index_path: a folder made by `vpr index build`.
        ckpt_path: where the index's checkpoint is now, if it moved (checked by sha256).
        top_k: matches per photo when a request does not say.
        radius_m: matches within this distance form a cluster.
        max_upload_mb: the largest photo accepted, in MiB (larger: 413).
        device: ``cpu``, ``cuda``... or ``auto``.
        nprobe: lists visited per query, for ivf/ivfpq indexes (default: as built).
        max_decodes: uploads decoded at the same time (the rest wait): bounds memory.
        max_pixels: the largest image accepted, in pixels (larger: 422, never decoded).
        max_batch_files: the most photos in one ``POST /locate/batch`` (more: 413).
        max_batch_mb: the largest ``POST /locate/batch`` body, in MiB (larger: 413).
        read_timeout: seconds a request's head, and its body, may take to arrive (slower:
            408); None for no limit. The head's limit needs `serve`/`serve_in_background`.
        max_batch: the most concurrent requests described in one forward pass (1: one
            request at a time, each alone).
        batch_window_ms: how long a request waits for others to share its forward pass.
        rerank: re-ranking settings (`vpr.rerank.options.rerank_settings`), or None.
        runtime: a `vpr.export.runtime.RuntimeChoice` (torch, or the index's ONNX model).
        min_confidence: a prediction with a lower confidence is answered as unknown (no
            location, a ``reason``), as `vpr locate --min_confidence`; None: never. A
            request's ``min_confidence`` form field replaces it for that request.
        precision: Lightning's name of the descriptors' precision (``auto``: bf16 where the
            hardware computes it natively), as every command's ``--precision``.

    Raises:
        LocationIndexError: the index or its checkpoint cannot be used.
        ValueError: a setting out of range.
    """
    if not 1 <= top_k <= MAX_TOP_K:
        raise ValueError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be positive, got {max_upload_mb}")
    max_upload_bytes = int(max_upload_mb * 2**20)
    if max_batch_files < 1:
        raise ValueError(f"max_batch_files must be at least 1, got {max_batch_files}")
    if max_batch_mb <= 0:
        raise ValueError(f"max_batch_mb must be positive, got {max_batch_mb}")
    max_batch_bytes = int(max_batch_mb * 2**20)
    if read_timeout is not None and read_timeout <= 0:
        raise ValueError(f"read_timeout must be positive, got {read_timeout}")
    locator = Locator(index_path, ckpt_path=ckpt_path, radius_m=radius_m, device=device,
                      nprobe=nprobe, max_batch=max_batch, batch_window_ms=batch_window_ms,
                      rerank=rerank, runtime=runtime, min_confidence=min_confidence,
                      precision=precision)
    model_size = locator.index.meta["model"].get("image_size")
    decoder = UploadDecoder(tuple(model_size) if model_size else None, max_pixels=max_pixels,
                            max_decodes=max_decodes)
    page = render_page(len(locator), top_k, MAX_TOP_K, max_upload_bytes,
                       max_batch_files=max_batch_files, max_batch_bytes=max_batch_bytes)
    static_files = load_static_files()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        decoder.close()
        locator.close()

    app = FastAPI(
        title="vpr serve",
        version=vpr.__version__,
        description="Where was this photo taken? Retrieval of the most similar geotagged "
                    f"images in a location index of {len(locator):,} images, then a vote "
                    "on their positions. The page at / does the same interactively.",
        dependencies=[Depends(reject_unknown_query)],
        lifespan=lifespan,
    )
    app.state.locator = locator
    app.state.decoder = decoder
    app.state.read_timeout = read_timeout  # read by the server for the request head
    app.add_middleware(
        BodySizeLimit, max_bytes=max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        limit_text=f"{max_upload_mb:g} MB (vpr serve --max_upload_mb)",
        read_timeout=read_timeout,
        path_limits={"/locate/batch": (
            max_batch_bytes + MULTIPART_OVERHEAD_BYTES,
            f"{max_batch_mb:g} MB for a batch (vpr serve --max_batch_mb)")})

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, error: UploadError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status_code)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    @app.get("/health", response_model=Health, summary="Is the service up, and what does it serve")
    def health() -> Health:
        return Health(
            status="ok", vpr_version=vpr.__version__, images=len(locator),
            index_type=locator.index.meta["index"]["type"],
            descriptors_dim=int(locator.index.descriptors.shape[1]), device=locator.device,
            default_top_k=top_k, max_top_k=MAX_TOP_K, max_upload_mb=max_upload_mb,
            max_batch_files=max_batch_files, max_batch_mb=max_batch_mb,
            min_confidence=min_confidence,
        )

    add_locate_routes(app, locator, decoder, top_k=top_k, max_upload_mb=max_upload_mb,
                      max_upload_bytes=max_upload_bytes, max_batch_files=max_batch_files)

    @app.get("/static/{name:path}", include_in_schema=False)
    def static(name: str) -> Response:
        # A key of the dictionary read at start-up, never a path joined to a folder.
        if name not in static_files:
            raise HTTPException(404, "no such file")
        content, media_type = static_files[name]
        return Response(content, media_type=media_type,
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get(
        "/image/{match_id}",
        response_class=Response,
        summary="A larger JPEG of an indexed image, to compare with the photo",
        description="As /thumbnail/{id}, at most 1024 pixels a side.",
        responses={200: {"content": {"image/jpeg": {}}},
                   404: {"description": "no such item, or its image is unavailable"}},
    )
    def image(match_id: Annotated[int, PathParameter(ge=0)]) -> Response:
        try:
            jpeg = locator.enlarged(match_id)
        except ThumbnailError as error:
            raise HTTPException(404, str(error)) from error
        return Response(jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=3600"})

    @app.get(
        "/thumbnail/{match_id}",
        response_class=Response,
        summary="A small JPEG of an indexed image",
        description="Only images of the index are served, by item number (the `id` of a "
                    "match); nothing else on the server can be reached this way.",
        responses={200: {"content": {"image/jpeg": {}}},
                   404: {"description": "no such item, or its image is unavailable"}},
    )
    def thumbnail(match_id: Annotated[int, PathParameter(ge=0)]) -> Response:
        try:
            jpeg = locator.thumbnail(match_id)
        except ThumbnailError as error:
            raise HTTPException(404, str(error)) from error
        return Response(jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=3600"})

    logger.info("Serving %s: %d images, model on %s", locator.index.path, len(locator),
                locator.device)
    return app
