"""The request side of `vpr serve`'s locate endpoints: form fields, their checks, the prior.

Shared by ``POST /locate`` and ``POST /locate/batch``: unknown query parameters and form
fields are refused (422) rather than ignored, an upload's name is a label and never a path,
and ``near`` / ``near_radius`` become the `GeoPrior` a request searches within.
"""

from __future__ import annotations

from typing import Any

from fastapi import Form, HTTPException, Request

from vpr.locate.geo import GeoPriorError, check_radius, parse_near
from vpr.locate.predict import GeoPrior
from vpr.serve.uploads import UploadError

MAX_TOP_K = 100
DEFAULT_NEAR_RADIUS_M = 100.0
FORM_FIELDS = {"file", "top_k", "near", "near_radius", "radius", "min_confidence"}
# Upload names are echoed back as `photo`; they are labels, never paths.
MAX_NAME_LENGTH = 255


def min_confidence_form() -> Any:
    """The ``min_confidence`` form field of /locate and /locate/batch (one each)."""
    return Form(ge=0.0, le=1.0, description="answer a prediction less confident than this "
                                            "(0-1) as unknown; default: the service's "
                                            "--min_confidence")


def reject_unknown_query(request: Request) -> None:
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


def photo_name(filename: str | None) -> str:
    """The upload's file name as a label; a name with a path in it is refused."""
    name = (filename or "upload").strip() or "upload"
    lowered = name.lower()
    if (any(character in name for character in "/\\") or "%2f" in lowered
            or "%5c" in lowered or name.startswith("..")
            or any(ord(character) < 32 for character in name)):
        raise UploadError(400, "the upload's file name must be a plain name, not a path")
    return name[:MAX_NAME_LENGTH]


def geo_prior(near: str | None, near_radius: float | None, radius: float | None
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


def prior_error(error: GeoPriorError) -> HTTPException:
    """422 for a prior that is malformed or that no indexed image lies within."""
    return HTTPException(422, str(error))


async def reject_unknown_fields(request: Request) -> None:
    """Refuses form fields the locate endpoints do not declare (instead of ignoring them)."""
    unknown = sorted(set((await request.form()).keys()) - FORM_FIELDS)
    if unknown:
        raise HTTPException(422, f"unknown form field(s): {', '.join(unknown)}; "
                                 f"allowed: {', '.join(sorted(FORM_FIELDS))}")
