"""The TUF image repository over HTTP, in the layout a stock TUF client expects with
consistent snapshots (TUF spec 5.3-5.7 and 7): ``N.root.json``, ``timestamp.json``,
``M.snapshot.json``, ``K.targets.json`` and ``targets/<sha256>.<target path>``.

Public: TUF metadata is signed and targets are verified by hash and length, so authenticity
does not rest on who may fetch (vehicles fetch before they could present anything else).
Everything but ``timestamp.json`` is immutable under its name and cached as such; targets
support range requests so an interrupted download resumes (RFC 9110 section 14).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import Ota
from api.errors import INVALID_REQUEST, ApiError
from api.routes.ota_artifacts import OtaApiError
from api.schemas import ErrorBody
from ota.byte_ranges import Part, Unsatisfiable, Whole, etag_matches, select
from ota.errors import ArtifactContentMissingError
from ota.policy import ROOT, SNAPSHOT, TARGETS, TIMESTAMP
from ota.service import OtaService

PREFIX = "/ota/image"
_METADATA_NAME = re.compile(r"(?:(\d{1,9})\.(root|snapshot|targets)|(timestamp))\.json")
_TARGET_NAME = re.compile(r"([0-9a-f]{64})\.(.+)")
IMMUTABLE = "public, max-age=31536000, immutable"
# timestamp.json changes at every publish and refresh: caches must ask each time.
REVALIDATE = "no-cache"

router = APIRouter(prefix=PREFIX, tags=["ota image repository"], responses={422: INVALID_REQUEST})

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such metadata version or target"},
    503: {"model": ErrorBody, "description": "OTA is not enabled in this API process"},
}


class MetadataNotFoundError(ApiError):
    status_code = 404
    code = "metadata_not_found"


class TargetNotFoundError(ApiError):
    status_code = 404
    code = "target_not_found"


@router.get(
    "/{filename}",
    responses={
        200: {"content": {"application/json": {}}, "description": "Signed TUF metadata"},
        **_NOT_FOUND,
    },
    summary="TUF metadata: N.root.json, timestamp.json, M.snapshot.json, K.targets.json",
)
async def metadata(ota: Ota, filename: str) -> Response:
    match = _METADATA_NAME.fullmatch(filename)
    if match is None:
        raise MetadataNotFoundError(f"{filename} is not TUF metadata of this repository")
    version_text, role, timestamp = match.groups()
    if timestamp:
        body = await ota.repository.metadata(TIMESTAMP)
        cache = REVALIDATE
    else:
        assert role in (ROOT, SNAPSHOT, TARGETS)
        body = await ota.repository.metadata(role, int(version_text))
        cache = IMMUTABLE
    if body is None:
        raise MetadataNotFoundError(f"{filename} does not exist")
    return Response(body, media_type="application/json", headers={"Cache-Control": cache})


_TARGET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The image"},
    206: {"content": {"application/octet-stream": {}}, "description": "Part of the image"},
    304: {"description": "Not modified (If-None-Match)"},
    416: {"model": ErrorBody, "description": "Range not satisfiable"},
    **_NOT_FOUND,
}


@router.get(
    "/targets/{filename}",
    responses=_TARGET_RESPONSES,
    summary="A published image at its consistent-snapshot path <sha256>.<target path>",
    description="Supports `Range: bytes=a-b` (one range), `If-Range` and `If-None-Match` with "
    'the ETag `"<sha256>"`.',
)
async def target(ota: Ota, request: Request, filename: str) -> Response:
    return await _serve_target(ota, request, filename)


@router.head(
    "/targets/{filename}",
    responses=_TARGET_RESPONSES,
    summary="Headers of a published image (length, ETag, ranges) without its body",
)
async def target_head(ota: Ota, request: Request, filename: str) -> Response:
    return await _serve_target(ota, request, filename)


async def _serve_target(ota: OtaService, request: Request, filename: str) -> Response:
    match = _TARGET_NAME.fullmatch(filename)
    if match is None:
        raise TargetNotFoundError(f"{filename} is not <sha256>.<target path>")
    sha256, target_path = match.groups()
    found = await ota.artifacts.published_content(target_path, sha256)
    if found is None:
        raise TargetNotFoundError(f"no published target {target_path} with sha256 {sha256}")
    artifact, path = found
    etag = f'"{artifact.sha256}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": IMMUTABLE}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    selection = select(
        request.headers.get("range"),
        request.headers.get("if-range"),
        size=artifact.length,
        etag=etag,
    )
    if isinstance(selection, Unsatisfiable):
        return Response(
            b'{"code":"range_not_satisfiable","message":"the range starts past the end"}',
            status_code=416,
            media_type="application/json",
            headers={**headers, "Content-Range": selection.content_range},
        )
    await _check_content(path, artifact.length, artifact.sha256)
    if isinstance(selection, Part):
        first, length, status_code = selection.first, selection.length, 206
        headers["Content-Range"] = selection.content_range
    else:
        assert isinstance(selection, Whole)
        first, length, status_code = 0, artifact.length, 200
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status_code, headers=headers, media_type=_OCTETS)
    return StreamingResponse(
        _read(path, first, length, ota.settings.download_chunk_bytes),
        status_code=status_code,
        headers=headers,
        media_type=_OCTETS,
    )


_OCTETS = "application/octet-stream"


async def _check_content(path: Path, length: int, sha256: str) -> None:
    """The file must be there and as long as recorded: a short file would break the response
    mid-way (Content-Length promised more), which a client cannot tell from a network fault."""
    try:
        size = (await asyncio.to_thread(os.stat, path)).st_size
    except FileNotFoundError:
        size = -1
    if size != length:
        raise OtaApiError(
            ArtifactContentMissingError(
                f"the content of {sha256} is missing or damaged", sha256=sha256
            )
        )


async def _read(path: Path, first: int, length: int, chunk_bytes: int) -> AsyncIterator[bytes]:
    source = await asyncio.to_thread(path.open, "rb")
    try:
        await asyncio.to_thread(source.seek, first)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(source.read, min(chunk_bytes, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        source.close()
