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

import dataclasses
import logging
import typing
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParameter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, create_model

import vpr
from vpr.locate.geo import GeoPriorError, check_radius, parse_near
from vpr.locate.predict import (
    DEFAULT_RADIUS_M,
    DEFAULT_TOP_K,
    GeoPrior,
    LocateResult,
    Match,
    prior_ids,
)
from vpr.serve.decoding import DEFAULT_MAX_DECODES, UploadDecoder
from vpr.serve.locator import Locator, ThumbnailError
from vpr.serve.page import CONTENT_SECURITY_POLICY, render_page
from vpr.serve.static import load_static_files
from vpr.serve.timeouts import DEFAULT_READ_TIMEOUT_S
from vpr.serve.uploads import (
    DEFAULT_MAX_PIXELS,
    MULTIPART_OVERHEAD_BYTES,
    BodySizeLimit,
    UploadError,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 20.0
MAX_TOP_K = 100
DEFAULT_NEAR_RADIUS_M = 100.0
FORM_FIELDS = {"file", "top_k", "near", "near_radius", "radius", "min_confidence"}
# Upload names are echoed back as `photo`; they are labels, never paths.
MAX_NAME_LENGTH = 255
DEFAULT_MAX_BATCH_FILES = 50
DEFAULT_MAX_BATCH_MB = 100.0


def _min_confidence_form() -> Any:
    """The ``min_confidence`` form field of /locate and /locate/batch (one each)."""
    return Form(ge=0.0, le=1.0, description="answer a prediction less confident than this "
                                            "(0-1) as unknown; default: the service's "
                                            "--min_confidence")


def _schema_of(dataclass: type, name: str, leading: dict[str, Any] | None = None,
               **overrides: Any) -> type[BaseModel]:
    """A pydantic model with the fields of a result dataclass, for the OpenAPI description.

    Args:
        dataclass: `Match` or `LocateResult`.
        name: the schema's name.
        leading: fields put before the dataclass's, as ``name=(type, default or Field)``.
        overrides: dataclass fields given another type, same form.
    """
    hints = typing.get_type_hints(dataclass)
    fields: dict[str, Any] = dict(leading or {})
    for item in dataclasses.fields(dataclass):
        fields[item.name] = overrides.get(item.name, (hints[item.name], ...))
    return create_model(name, **fields)


MatchOut = _schema_of(Match, "Match", leading={"id": (int | None, Field(
    description="the match's item number in the index: GET /thumbnail/{id} shows it"))},
    keypoint_pairs=(list[list[float]] | None, Field(
        None, description="with --rerank only: the match's best verified inlier "
                          "correspondences (at most 50), each [x_photo, y_photo, x_match, "
                          "y_match] as fractions (0-1) of each image's width and height")))
LocateOut = _schema_of(LocateResult, "LocateResult", matches=(list[MatchOut], ...), leading={
    "location": (dict[str, float | None] | None, Field(
        None, description="latitude, longitude, utm_east, utm_north; null when unknown")),
    "reason": (str | None, Field(None, description="why the location is unknown"))})


class BatchErrorDetail(BaseModel):
    """Why one photo of a batch was refused: the status a single upload would have got."""

    status: int
    detail: str


class BatchErrorOut(BaseModel):
    """A batch row for a photo that was refused; the other photos are still answered."""

    photo: str
    error: BatchErrorDetail


class Health(BaseModel):
    """What /health answers."""

    status: str
    vpr_version: str
    images: int
    index_type: str
    descriptors_dim: int
    device: str
    default_top_k: int
    max_top_k: int
    max_upload_mb: float
    max_batch_files: int
    max_batch_mb: float
    min_confidence: float | None


def _reject_unknown_query(request: Request) -> None:
    """Refuses query parameters the route does not declare (instead of ignoring them)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed: set[str] = set()
    pending = [dependant]
    while pending:  # the route's own parameters and those of its dependencies
        current = pending.pop()
        allowed.update(parameter.alias for parameter in current.query_params)
        pending.extend(current.dependencies)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(422, f"unknown query parameter(s): {', '.join(unknown)}; "
                                 f"allowed: {', '.join(sorted(allowed)) or 'none'}")


def _photo_name(filename: str | None) -> str:
    """The upload's file name as a label; a name with a path in it is refused."""
    name = (filename or "upload").strip() or "upload"
    lowered = name.lower()
    if (any(character in name for character in "/\\") or "%2f" in lowered
            or "%5c" in lowered or name.startswith("..")
            or any(ord(character) < 32 for character in name)):
        raise UploadError(400, "the upload's file name must be a plain name, not a path")
    return name[:MAX_NAME_LENGTH]


def _geo_prior(near: str | None, near_radius: float | None, radius: float | None
               ) -> GeoPrior | None:
    """The prior of a request's ``near`` / ``near_radius`` (alias ``radius``) form fields.

    Raises:
        HTTPException: 422 for a malformed point or radius, or radii that disagree.
    """
    if near_radius is not None and radius is not None and near_radius != radius:
        raise HTTPException(422, "radius and near_radius disagree; give one of them")
    fix_error = next((value for value in (near_radius, radius) if value is not None),
                     DEFAULT_NEAR_RADIUS_M)
    try:
        return None if near is None else GeoPrior(*parse_near(near), check_radius(fix_error))
    except GeoPriorError as error:
        raise HTTPException(422, str(error).replace("--near", "near")) from None


def _prior_error(error: GeoPriorError) -> HTTPException:
    """422 for a prior that is malformed or that no indexed image lies within."""
    return HTTPException(422, str(error))


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
        dependencies=[Depends(_reject_unknown_query)],
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

    async def _reject_unknown_fields(request: Request) -> None:
        unknown = sorted(set((await request.form()).keys()) - FORM_FIELDS)
        if unknown:
            raise HTTPException(422, f"unknown form field(s): {', '.join(unknown)}; "
                                     f"allowed: {', '.join(sorted(FORM_FIELDS))}")

    @app.post(
        "/locate",
        response_model=list[LocateOut],
        summary="Where was this photo taken?",
        description="The same JSON as `vpr locate --json` for one photo (a list of one "
                    "result): the predicted location, its confidence and the top-k matches "
                    "with coordinates and similarity. `photo` is the upload's file name; each "
                    "match also has `id`, its item number for /thumbnail/{id}. `top_k` may be "
                    "given as a form field or a query parameter. The form fields `near` "
                    "(LAT,LON) and `near_radius` (metres, default 100) search only the images "
                    "within that distance of a GPS fix; 422 when none lies there. The form "
                    "field `min_confidence` (0-1) replaces the service's --min_confidence: "
                    "a prediction less confident is answered as unknown (`location` null, "
                    "`reason` says why; the matches stay). With --rerank, each match also "
                    "has `inliers` and `keypoint_pairs`.",
        responses={
            400: {"description": "empty upload, or a file name with a path"},
            413: {"description": "upload larger than --max_upload_mb"},
            415: {"description": "not an image"},
            422: {"description": "damaged image, invalid top_k / near / min_confidence / "
                                 "unknown field, or no indexed image within near_radius of "
                                 "near"},
        },
    )
    async def locate_photo(
        request: Request,
        file: Annotated[UploadFile, File(description="the photo (JPEG, PNG, WebP...)")],
        top_k_form: Annotated[int | None, Form(alias="top_k", ge=1, le=MAX_TOP_K)] = None,
        top_k_query: Annotated[int | None, Query(alias="top_k", ge=1, le=MAX_TOP_K)] = None,
        near: Annotated[str | None, Form(description="LAT,LON of a GPS fix")] = None,
        near_radius: Annotated[float | None, Form(description="the fix's error, in metres")
                               ] = None,
        radius: Annotated[float | None, Form(description="same as near_radius")] = None,
        min_confidence: Annotated[float | None, _min_confidence_form()] = None,
    ) -> JSONResponse:
        await _reject_unknown_fields(request)
        prior = _geo_prior(near, near_radius, radius)
        name = _photo_name(file.filename)
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise UploadError(413, f"upload too large: the limit is {max_upload_mb:g} MB")
        await file.close()
        data, _ = await decoder.prepare_async(data)
        count = top_k_form or top_k_query or top_k
        try:
            results = await run_in_threadpool(locator.locate, data, name, count, prior,
                                              min_confidence)
        except GeoPriorError as error:
            raise _prior_error(error) from None
        # Returned as is, not re-validated by response_model: the `to_dict()` of the CLI.
        return JSONResponse(results)

    async def read_upload(file: UploadFile) -> tuple[str, bytes]:
        """The upload's label and its bytes, checked and shrunk for the model (as /locate).

        Raises:
            UploadError: a refused upload (name, size, not an image, damaged...).
        """
        try:
            name = _photo_name(file.filename)
            data = await file.read(max_upload_bytes + 1)
        finally:
            await file.close()
        if len(data) > max_upload_bytes:
            raise UploadError(413, f"upload too large: the limit is {max_upload_mb:g} MB")
        data, _ = await decoder.prepare_async(data)
        return name, data

    @app.post(
        "/locate/batch",
        response_model=list[LocateOut | BatchErrorOut],
        summary="Where were these photos taken?",
        description="Several photos at once (several `file` parts, at most --max_batch_files "
                    "and --max_batch_mb in all): one row per photo, in upload order. A "
                    "located photo's row is what POST /locate answers for it alone; a refused "
                    "one's row is `{photo, error: {status, detail}}` with the status a single "
                    "upload would have got, and the other photos are still located. The form "
                    "fields `top_k`, `near`, `near_radius` (or `radius`) and "
                    "`min_confidence` are those of POST /locate and apply to every photo of "
                    "the batch (one GPS fix for all: send photos from different places in "
                    "separate batches).",
        responses={
            413: {"description": "more photos than --max_batch_files, or a body over "
                                 "--max_batch_mb"},
            422: {"description": "no file, invalid top_k / near / min_confidence, an "
                                 "unknown field, or no indexed image within near_radius of "
                                 "near"},
        },
    )
    async def locate_batch(
        request: Request,
        file: Annotated[list[UploadFile], File(description="the photos, one part each")],
        top_k_form: Annotated[int | None, Form(alias="top_k", ge=1, le=MAX_TOP_K)] = None,
        top_k_query: Annotated[int | None, Query(alias="top_k", ge=1, le=MAX_TOP_K)] = None,
        near: Annotated[str | None, Form(description="LAT,LON of a GPS fix, for every "
                                                     "photo")] = None,
        near_radius: Annotated[float | None, Form(description="the fix's error, in metres")
                               ] = None,
        radius: Annotated[float | None, Form(description="same as near_radius")] = None,
        min_confidence: Annotated[float | None, _min_confidence_form()] = None,
    ) -> JSONResponse:
        await _reject_unknown_fields(request)
        if len(file) > max_batch_files:
            for upload in file:
                await upload.close()
            raise UploadError(413, f"too many photos: {len(file)} in one batch, at most "
                                   f"{max_batch_files} (vpr serve --max_batch_files)")
        prior = _geo_prior(near, near_radius, radius)
        try:  # the whole batch's field: refused once, before any photo is described
            prior_ids(locator.index, prior)
        except GeoPriorError as error:
            for upload in file:
                await upload.close()
            raise _prior_error(error) from None
        count = top_k_form or top_k_query or top_k
        rows: list[dict[str, Any]] = []
        for upload in file:  # one at a time: at most one decoded photo held per batch
            try:
                name, data = await read_upload(upload)
            except UploadError as error:
                label = (upload.filename or "upload")[:MAX_NAME_LENGTH]
                rows.append({"photo": label, "error": {"status": error.status_code,
                                                       "detail": error.message}})
                continue
            rows.extend(await run_in_threadpool(locator.locate, data, name, count, prior,
                                                min_confidence))
        return JSONResponse(rows)

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
