"""The Uptane director over HTTP: each vehicle's metadata at ``/ota/director/{vin}/``, in the
layout a TUF client expects (``N.root.json``, ``timestamp.json``, ``M.snapshot.json``,
``K.targets.json``; ADR 0009).

Unlike the image repository, this is not public: the metadata says what one car will install
and when. The car authenticates with HTTP Basic, its VIN and device secret (the credentials it
uses for MQTT, checked against the vehicle registry), and may fetch only its own VIN's path;
fleet administrators may read any (a bearer token). Asking for another car's path answers
404, as for an unknown car. That is one fence; the other is in the metadata: targets are
bound to the VIN and to the car's own report nonce, so a file replayed to another car is
refused by that car even if it got through.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from api.deps import MaybeAdmin, Ota, State
from api.errors import INVALID_REQUEST, ApiError, NotAuthenticatedError
from api.schemas import ErrorBody
from ota.director import Director
from ota.director_errors import DirectorNotInitializedError
from ota.policy import ROOT, SNAPSHOT, TARGETS
from protocol.vin import VIN_PATTERN

PREFIX = "/ota/director"
REALM = "FleetLink director"
_NAME = re.compile(r"(?:(\d{1,9})\.(root|snapshot|targets)|(timestamp))\.json")
IMMUTABLE_PRIVATE = "private, max-age=31536000, immutable"
_basic = HTTPBasic(auto_error=False, realm=REALM, description="The vehicle's VIN and secret")

router = APIRouter(prefix=PREFIX, tags=["ota director"], responses={422: INVALID_REQUEST})


class DirectorMetadataNotFoundError(ApiError):
    status_code = 404
    code = "metadata_not_found"


class DirectorUnavailableError(ApiError):
    status_code = 503
    code = "director_not_initialized"


def director(state: State, ota: Ota) -> Director:
    """The director of this API process's OTA service (its online director keys). Cheap:
    keys are read when something is signed, and nothing else is held."""
    return Director.from_settings(state.pool, ota.settings)


async def vehicle_or_admin(
    state: State,
    admin: MaybeAdmin,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    vin: Annotated[str, Path(pattern=VIN_PATTERN)],
) -> str:
    """The VIN the caller may read: its own (a vehicle) or any (an administrator)."""
    if admin:
        return vin
    challenge = {"WWW-Authenticate": f'Basic realm="{REALM}"'}
    if credentials is None:
        raise NotAuthenticatedError("vehicle credentials are required", headers=challenge)
    identity = await state.registry.verify(credentials.username, credentials.password)
    if identity is None:
        raise NotAuthenticatedError("unknown vehicle or wrong secret", headers=challenge)
    if not secrets.compare_digest(credentials.username, vin):
        raise DirectorMetadataNotFoundError(f"no director metadata at {vin}")
    return vin


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}, "description": "Signed director metadata"},
    401: {"model": ErrorBody, "description": "No or wrong vehicle credentials"},
    404: {"model": ErrorBody, "description": "No such metadata, or not this vehicle's"},
    503: {"model": ErrorBody, "description": "OTA disabled here, or no director root yet"},
}


@router.get(
    "/{vin}/{filename}",
    responses=_RESPONSES,
    summary="A vehicle's director metadata: N.root.json, timestamp.json, M.snapshot.json, "
    "K.targets.json",
)
async def metadata(
    state: State,
    vin: Annotated[str, Depends(vehicle_or_admin)],
    repository: Annotated[Director, Depends(director)],
    filename: str,
) -> Response:
    match = _NAME.fullmatch(filename)
    if match is None:
        raise DirectorMetadataNotFoundError(f"{filename} is not director metadata")
    version_text, role, timestamp = match.groups()
    try:
        if timestamp:
            # Computed now: the plan (assignment, last report) decides what is signed.
            body: bytes | None = await repository.timestamp(vin, state.now())
            cache = "no-store"
        elif role == ROOT:
            stored = await repository.root(int(version_text))
            body = stored.body if stored else None
            cache = "public, max-age=31536000, immutable"
        else:
            assert role in (SNAPSHOT, TARGETS)
            body = await repository.stored(vin, role, int(version_text))
            cache = IMMUTABLE_PRIVATE
    except DirectorNotInitializedError as exc:
        raise DirectorUnavailableError(exc.message) from exc
    if body is None:
        raise DirectorMetadataNotFoundError(f"{filename} does not exist for {vin}")
    return Response(body, media_type="application/json", headers={"Cache-Control": cache})
