"""The shapes of `vpr serve`'s answers, for its OpenAPI description.

The locate endpoints return the CLI's `to_dict()` JSON as is; these pydantic models only
describe it (``/docs``, ``/openapi.json``). ``/health`` answers a `Health`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic import BaseModel, Field, create_model

from vpr.locate.predict import LocateResult, Match


def schema_of(dataclass: type, name: str, leading: dict[str, Any] | None = None,
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


MatchOut = schema_of(Match, "Match", leading={"id": (int | None, Field(
    description="the match's item number in the index: GET /thumbnail/{id} shows it"))},
    keypoint_pairs=(list[list[float]] | None, Field(
        None, description="with --rerank only: the match's best verified inlier "
                          "correspondences (at most 50), each [x_photo, y_photo, x_match, "
                          "y_match] as fractions (0-1) of each image's width and height")))
LocateOut = schema_of(LocateResult, "LocateResult", matches=(list[MatchOut], ...), leading={
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
