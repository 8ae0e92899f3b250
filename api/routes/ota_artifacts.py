"""OTA artifacts (fleet administrators): upload, list, inspect, publish.

Upload is a raw body (``Content-Type: application/octet-stream``) with the image's facts in
the query string, not multipart: the body then streams straight from the socket through the
hash into the artifact file, with nothing spooled (multipart parsers spool each part to a
temporary file first, a second full copy). Authentication and the duplicate and release
counter checks run before the first body byte is read.

    curl -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/octet-stream" \\
         --data-binary @tcu-fw.bin \\
         "$API/v1/ota/artifacts?name=tcu-fw&version=2.1.0&hardware_id=VW-GOLF-TCU-H1&release_counter=7"
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import Field
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import Admin, Ota, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED, ApiError
from api.schemas import ApiModel, ErrorBody
from api.security.body_limit import BodyLimitMiddleware
from ota.artifact_store import Artifact
from ota.errors import (
    ArtifactContentMissingError,
    ArtifactExistsError,
    ArtifactIncompleteError,
    ArtifactInvalidError,
    ArtifactNotFoundError,
    ArtifactTooLargeError,
    DependencyNotPublishedError,
    KeyStoreError,
    MetadataCorruptError,
    OtaError,
    ReleaseCounterRollbackError,
    RepositoryNotInitializedError,
    SigningKeyMissingError,
    ThresholdNotMetError,
)
from ota.image_target import NAME_PATTERN, VERSION_PATTERN, ImageSpec

UPLOAD_PATH = "/v1/ota/artifacts"
UPLOAD_MEDIA_TYPE = "application/octet-stream"

router = APIRouter(
    prefix=UPLOAD_PATH,
    tags=["ota artifacts"],
    responses={401: UNAUTHENTICATED, 403: FORBIDDEN, 422: INVALID_REQUEST},
)


# -- errors -------------------------------------------------------------------------------------

_STATUS: tuple[tuple[type[OtaError], int], ...] = (
    (ArtifactInvalidError, 422),
    (ArtifactTooLargeError, 413),
    (ArtifactIncompleteError, 400),
    (ArtifactExistsError, 409),
    (ReleaseCounterRollbackError, 409),
    (DependencyNotPublishedError, 409),
    (ArtifactNotFoundError, 404),
    # The service cannot sign right now: an operator must act (init, keys), clients may retry.
    (RepositoryNotInitializedError, 503),
    (SigningKeyMissingError, 503),
    (KeyStoreError, 503),
    (ArtifactContentMissingError, 500),
    (ThresholdNotMetError, 500),
    (MetadataCorruptError, 500),
)


class OtaApiError(ApiError):
    """An ``OtaError`` as the API answers it: same ``code``, an HTTP status by kind."""

    def __init__(self, error: OtaError) -> None:
        super().__init__(error.message)
        self.code = error.code
        self.status_code = next((s for t, s in _STATUS if isinstance(error, t)), 500)


@contextmanager
def ota_errors() -> Iterator[None]:
    try:
        yield
    except OtaError as exc:
        raise OtaApiError(exc) from exc


# -- body limit ---------------------------------------------------------------------------------


class BodyLimitExceptUploads:
    """``BodyLimitMiddleware`` for every request but an artifact upload, whose body may be
    gigabytes: the upload route streams it to disk and enforces FLEETLINK_OTA_MAX_ARTIFACT_BYTES
    itself (413 ``artifact_too_large``), after authenticating the caller."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._limited = BodyLimitMiddleware(app, max_bytes=max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == UPLOAD_PATH:
            await self._app(scope, receive, send)
        else:
            await self._limited(scope, receive, send)


# -- schemas ------------------------------------------------------------------------------------


class ArtifactPublic(ApiModel):
    id: UUID
    name: str = Field(examples=["tcu-fw"])
    version: str = Field(examples=["2.1.0"])
    target_path: str = Field(
        description="The TUF target path: <name>-<version>", examples=["tcu-fw-2.1.0"]
    )
    hardware_ids: list[str] = Field(examples=[["VOLKSWAG-GOLF-TCU-H1"]])
    release_counter: int = Field(description="Uptane release counter; never lower per hardware id")
    dependencies: list[str] = Field(description="Target paths that must be installed too")
    conflicts: list[str] = Field(description="Target paths that must not be installed")
    length: int = Field(description="Bytes")
    sha256: str
    uploaded_at: datetime
    published: bool
    published_at: datetime | None
    targets_version: int | None = Field(description="The targets metadata version that listed it")
    download_path: str | None = Field(
        description="Where a TUF client downloads it (consistent-snapshot path), once published",
        examples=["/ota/image/targets/3f0c...e1.tcu-fw-2.1.0"],
    )


class ArtifactsPublic(ApiModel):
    data: list[ArtifactPublic]
    count: int = Field(description="Total number of artifacts, regardless of paging")


def artifact_public(artifact: Artifact) -> ArtifactPublic:
    spec = artifact.spec
    return ArtifactPublic(
        id=artifact.id,
        name=spec.name,
        version=spec.version,
        target_path=artifact.target_path,
        hardware_ids=list(spec.hardware_ids),
        release_counter=spec.release_counter,
        dependencies=list(spec.dependencies),
        conflicts=list(spec.conflicts),
        length=artifact.length,
        sha256=artifact.sha256,
        uploaded_at=artifact.uploaded_at,
        published=artifact.published,
        published_at=artifact.published_at,
        targets_version=artifact.targets_version,
        download_path=(
            f"/ota/image/targets/{artifact.sha256}.{artifact.target_path}"
            if artifact.published
            else None
        ),
    )


# -- routes -------------------------------------------------------------------------------------

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image, as raw bytes",
        "content": {UPLOAD_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown artifact (code artifact_not_found)"}
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ArtifactPublic,
    responses={
        409: {
            "model": ErrorBody,
            "description": "Name/version exists (artifact_exists), or the release counter is "
            "below one published for a hardware id (release_counter_rollback)",
        },
        413: {"model": ErrorBody, "description": "Over FLEETLINK_OTA_MAX_ARTIFACT_BYTES"},
        415: {"model": ErrorBody, "description": "Body not application/octet-stream"},
    },
    openapi_extra=_UPLOAD_BODY,
    summary="Upload an image (raw body, streamed to disk; facts in the query string)",
)
async def upload_artifact(
    *,
    request: Request,
    response: Response,
    state: State,
    ota: Ota,
    _: Admin,
    name: Annotated[str, Query(pattern=f"^{NAME_PATTERN}$", examples=["tcu-fw"])],
    version: Annotated[str, Query(pattern=f"^{VERSION_PATTERN}$", examples=["2.1.0"])],
    hardware_id: Annotated[
        list[str],
        Query(
            min_length=1,
            description="ECU hardware id the image is built for; repeat for several",
        ),
    ],
    release_counter: Annotated[int, Query(ge=0, le=2**31 - 1)],
    depends: Annotated[
        list[str] | None, Query(description="Target path this image needs; repeatable")
    ] = None,
    conflicts: Annotated[
        list[str] | None, Query(description="Target path this image excludes; repeatable")
    ] = None,
) -> ArtifactPublic:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != UPLOAD_MEDIA_TYPE:
        raise UnsupportedMediaTypeError(
            f"send the image as {UPLOAD_MEDIA_TYPE} (raw bytes), not {media_type or 'nothing'}"
        )
    with ota_errors():
        spec = ImageSpec(
            name=name,
            version=version,
            hardware_ids=tuple(hardware_id),
            release_counter=release_counter,
            dependencies=tuple(depends or ()),
            conflicts=tuple(conflicts or ()),
        )
        declared = _declared_length(request)
        if declared is not None and declared > ota.artifacts.max_bytes:
            raise ArtifactTooLargeError(
                f"artifact of {declared} bytes exceeds {ota.artifacts.max_bytes}",
                max_bytes=ota.artifacts.max_bytes,
            )
        artifact = await ota.artifacts.upload(
            spec, _body(request, declared), state.now(), declared_length=declared
        )
    response.headers["Location"] = f"{UPLOAD_PATH}/{artifact.id}"
    return artifact_public(artifact)


@router.get("", response_model=ArtifactsPublic, summary="List artifacts, newest first")
async def list_artifacts(ota: Ota, _: Admin, paging: Paging) -> ArtifactsPublic:
    artifacts, count = await ota.artifacts.page(limit=paging.limit, offset=paging.offset)
    return ArtifactsPublic(data=[artifact_public(a) for a in artifacts], count=count)


@router.get(
    "/{artifact_id}", response_model=ArtifactPublic, responses=NOT_FOUND, summary="One artifact"
)
async def get_artifact(ota: Ota, _: Admin, artifact_id: UUID) -> ArtifactPublic:
    artifact = await ota.artifacts.get(artifact_id)
    if artifact is None:
        raise OtaApiError(
            ArtifactNotFoundError(f"no artifact {artifact_id}", artifact=str(artifact_id))
        )
    return artifact_public(artifact)


@router.post(
    "/{artifact_id}/publish",
    response_model=ArtifactPublic,
    responses={
        **NOT_FOUND,
        409: {
            "model": ErrorBody,
            "description": "A dependency is unpublished (dependency_not_published), or a higher "
            "release counter was published meanwhile (release_counter_rollback)",
        },
        503: {"model": ErrorBody, "description": "Repository not initialized or keys missing"},
    },
    summary="Publish: list the artifact in new targets, snapshot and timestamp metadata",
    description="Idempotent: publishing a published artifact returns it unchanged.",
)
async def publish_artifact(state: State, ota: Ota, _: Admin, artifact_id: UUID) -> ArtifactPublic:
    with ota_errors():
        artifact = await ota.publish(artifact_id, state.now())
    return artifact_public(artifact)


class UnsupportedMediaTypeError(ApiError):
    status_code = 415
    code = "unsupported_media_type"


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise ArtifactInvalidError(
            "Content-Length is not a number", field="content-length", value=value
        ) from None
    return length


async def _body(request: Request, declared: int | None) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise ArtifactIncompleteError(
            "the client went away during the upload", declared=declared or -1, received=-1
        ) from None
