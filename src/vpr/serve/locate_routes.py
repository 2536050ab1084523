"""`vpr serve`'s locate endpoints: ``POST /locate`` (one photo) and ``POST /locate/batch``.

Each photo is checked (name, size, decodable, pixels) and shrunk for the model before it is
described; a batch holds at most ``max_batch_files`` photos, and a photo of a batch that is
refused gets its error in its own row while the others are located.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from vpr.locate.geo import GeoPriorError
from vpr.locate.predict import prior_ids
from vpr.serve.decoding import UploadDecoder
from vpr.serve.forms import (
    MAX_NAME_LENGTH,
    MAX_TOP_K,
    geo_prior,
    min_confidence_form,
    photo_name,
    prior_error,
    reject_unknown_fields,
)
from vpr.serve.locator import Locator
from vpr.serve.schemas import BatchErrorOut, LocateOut
from vpr.serve.uploads import UploadError


def add_locate_routes(app: FastAPI, locator: Locator, decoder: UploadDecoder, top_k: int,
                      max_upload_mb: float, max_upload_bytes: int,
                      max_batch_files: int) -> None:
    """Adds ``POST /locate`` and ``POST /locate/batch`` to the app of `create_app`.

    Args:
        app: the service's app.
        locator: the index and model, loaded once.
        decoder: the bounded decoding of uploads.
        top_k: matches per photo when a request does not say.
        max_upload_mb: the largest photo accepted, in MiB (larger: 413), as users set it.
        max_upload_bytes: the same limit in bytes.
        max_batch_files: the most photos in one ``POST /locate/batch`` (more: 413).
    """

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
        min_confidence: Annotated[float | None, min_confidence_form()] = None,
    ) -> JSONResponse:
        await reject_unknown_fields(request)
        prior = geo_prior(near, near_radius, radius)
        name = photo_name(file.filename)
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
            raise prior_error(error) from None
        # Returned as is, not re-validated by response_model: the `to_dict()` of the CLI.
        return JSONResponse(results)

    async def read_upload(file: UploadFile) -> tuple[str, bytes]:
        """The upload's label and its bytes, checked and shrunk for the model (as /locate).

        Raises:
            UploadError: a refused upload (name, size, not an image, damaged...).
        """
        try:
            name = photo_name(file.filename)
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
        min_confidence: Annotated[float | None, min_confidence_form()] = None,
    ) -> JSONResponse:
        await reject_unknown_fields(request)
        if len(file) > max_batch_files:
            for upload in file:
                await upload.close()
            raise UploadError(413, f"too many photos: {len(file)} in one batch, at most "
                                   f"{max_batch_files} (vpr serve --max_batch_files)")
        prior = geo_prior(near, near_radius, radius)
        try:  # the whole batch's field: refused once, before any photo is described
            prior_ids(locator.index, prior)
        except GeoPriorError as error:
            for upload in file:
                await upload.close()
            raise prior_error(error) from None
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
