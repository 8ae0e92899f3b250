"""The OTA routes through the real application: admin artifact routes, the TUF layout, range
requests (206/416, ETag, If-Range), and 503 when the app runs without OTA."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from fleetlink.embedded_postgres import free_port
from ota.service import OtaService
from ota.tuf_api import Metadata, Root, Timestamp
from protocol.endpoint import MqttEndpoint
from tests.ota.conftest import OtaFixture

pytestmark = pytest.mark.integration

ADMIN_TOKEN = secrets.token_urlsafe(32)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OCTETS = {"Content-Type": "application/octet-stream"}
FACTS = {
    "name": "tcu-fw",
    "version": "2.1.0",
    "hardware_id": "VW-GOLF-TCU-H1",
    "release_counter": 7,
}
CHEAP_HASHING: dict[str, Any] = {"password_hash_time_cost": 1, "password_hash_memory_kib": 1024}
IMAGE = os.urandom(200_000)  # over the API's 64 KiB body limit: uploads must bypass it


@asynccontextmanager
async def api(pool: asyncpg.Pool, ota: OtaService | None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        ApiSettings(
            admin_token=ADMIN_TOKEN, password_hash_time_cost=1, password_hash_memory_kib=1024
        ),
        mqtt=MqttEndpoint("127.0.0.1", free_port()),
        database=pool,
        ota=ota,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fleetlink.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def http(pool: asyncpg.Pool, ota: OtaFixture) -> AsyncIterator[httpx.AsyncClient]:
    async with api(pool, ota.service) as client:
        yield client


async def upload(http: httpx.AsyncClient, content: bytes = IMAGE, **facts: Any) -> httpx.Response:
    return await http.post(
        "/v1/ota/artifacts",
        params={**FACTS, **facts},
        content=content,
        headers={**ADMIN, **OCTETS},
    )


async def published(http: httpx.AsyncClient, content: bytes = IMAGE) -> dict[str, Any]:
    created = await upload(http, content)
    assert created.status_code == 201, created.text
    response = await http.post(f"/v1/ota/artifacts/{created.json()['id']}/publish", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- artifacts ------------------------------------------------------------------------------


async def test_upload_then_get_list_and_publish(http: httpx.AsyncClient) -> None:
    response = await upload(
        http, hardware_id=["VW-GOLF-TCU-H1", "VW-POLO-TCU-H2"], depends=["bcm-1"]
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == f"/v1/ota/artifacts/{created['id']}"
    assert created["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    assert created["length"] == len(IMAGE)
    assert created["target_path"] == "tcu-fw-2.1.0"
    assert created["hardware_ids"] == ["VW-GOLF-TCU-H1", "VW-POLO-TCU-H2"]
    assert created["dependencies"] == ["bcm-1"]
    assert created["published"] is False and created["download_path"] is None

    fetched = await http.get(f"/v1/ota/artifacts/{created['id']}", headers=ADMIN)
    assert fetched.json() == created
    listing = await http.get("/v1/ota/artifacts", params={"limit": 1}, headers=ADMIN)
    assert listing.json() == {"data": [created], "count": 1}

    refused = await http.post(f"/v1/ota/artifacts/{created['id']}/publish", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.json()["code"] == "dependency_not_published"


async def test_published_artifact_names_its_download_path(http: httpx.AsyncClient) -> None:
    body = await published(http)
    assert body["published"] is True and body["targets_version"] == 2
    assert body["download_path"] == f"/ota/image/targets/{body['sha256']}.tcu-fw-2.1.0"
    download = await http.get(body["download_path"])
    assert download.status_code == 200
    assert download.content == IMAGE


async def test_refusals_carry_stable_codes(http: httpx.AsyncClient) -> None:
    assert (await upload(http)).status_code == 201
    duplicate = await upload(http)
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "artifact_exists")
    first = (await http.get("/v1/ota/artifacts", headers=ADMIN)).json()["data"][0]
    await http.post(f"/v1/ota/artifacts/{first['id']}/publish", headers=ADMIN)
    lower = await upload(http, version="2.0.9", release_counter=6)
    assert (lower.status_code, lower.json()["code"]) == (409, "release_counter_rollback")
    empty = await upload(http, b"", version="3.0.0")
    assert (empty.status_code, empty.json()["code"]) == (422, "artifact_invalid")
    bad_hw = await upload(http, version="3.0.1", hardware_id="no spaces allowed")
    assert (bad_hw.status_code, bad_hw.json()["code"]) == (422, "artifact_invalid")
    no_hw = await http.post(
        "/v1/ota/artifacts",
        params={"name": "x", "version": "1", "release_counter": 1},
        content=b"x",
        headers={**ADMIN, **OCTETS},
    )
    assert (no_hw.status_code, no_hw.json()["code"]) == (422, "invalid_request")
    multipart = await http.post(
        "/v1/ota/artifacts", params={**FACTS, "version": "4"}, files={"f": b"x"}, headers=ADMIN
    )
    assert (multipart.status_code, multipart.json()["code"]) == (415, "unsupported_media_type")
    unknown = await http.get(
        f"/v1/ota/artifacts/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=ADMIN
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "artifact_not_found")


async def test_oversize_upload_is_refused_with_413(pool: asyncpg.Pool, ota: OtaFixture) -> None:
    small = OtaService(pool, ota.settings.model_copy(update={"max_artifact_bytes": 1000}))
    async with api(pool, small) as client:
        declared = await upload(client, b"x" * 1001)
        assert (declared.status_code, declared.json()["code"]) == (413, "artifact_too_large")

        async def undeclared() -> AsyncIterator[bytes]:  # chunked: no Content-Length
            for _ in range(11):
                yield b"y" * 100

        chunked = await client.post(
            "/v1/ota/artifacts", params=FACTS, content=undeclared(), headers={**ADMIN, **OCTETS}
        )
        assert (chunked.status_code, chunked.json()["code"]) == (413, "artifact_too_large")
    assert list((ota.settings.artifacts_dir / "incoming").iterdir()) == []


async def test_artifact_routes_are_for_fleet_admins_only(http: httpx.AsyncClient) -> None:
    anonymous = await http.post("/v1/ota/artifacts", params=FACTS, content=IMAGE, headers=OCTETS)
    assert anonymous.status_code == 401
    created = await http.post(
        "/v1/auth/clients",
        json={
            "client_id": "sc-1",
            "name": "Garage",
            "role": "service_center",
            "centres": ["c1"],
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    token = await http.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sc-1",
            "client_secret": created.json()["client_secret"],
        },
    )
    garage = {"Authorization": f"Bearer {token.json()['access_token']}"}
    for response in (
        await http.get("/v1/ota/artifacts", headers=garage),
        await http.post(
            "/v1/ota/artifacts", params=FACTS, content=b"x", headers={**garage, **OCTETS}
        ),
    ):
        assert (response.status_code, response.json()["code"]) == (403, "forbidden")


async def test_without_an_ota_service_the_routes_answer_503(pool: asyncpg.Pool) -> None:
    async with api(pool, None) as client:
        for response in (
            await client.get("/ota/image/timestamp.json"),
            await client.get("/v1/ota/artifacts", headers=ADMIN),
        ):
            assert (response.status_code, response.json()["code"]) == (503, "ota_unavailable")


# -- the TUF layout -----------------------------------------------------------------------------


async def test_metadata_layout_and_caching(http: httpx.AsyncClient) -> None:
    root = await http.get("/ota/image/1.root.json")
    assert root.status_code == 200
    assert root.headers["content-type"] == "application/json"
    assert "immutable" in root.headers["cache-control"]
    assert Metadata[Root].from_bytes(root.content).signed.version == 1
    await published(http)
    timestamp = await http.get("/ota/image/timestamp.json")
    assert timestamp.headers["cache-control"] == "no-cache"
    snapshot_version = (
        Metadata[Timestamp].from_bytes(timestamp.content).signed.snapshot_meta.version
    )
    assert snapshot_version == 2
    for name in ("2.snapshot.json", "1.snapshot.json", "2.targets.json", "1.targets.json"):
        assert (await http.get(f"/ota/image/{name}")).status_code == 200, name
    for name in (
        "2.root.json",
        "snapshot.json",
        "0.root.json",
        "3.targets.json",
        "x.json",
        "timestamp.JSON",
    ):
        missing = await http.get(f"/ota/image/{name}")
        assert (missing.status_code, missing.json()["code"]) == (404, "metadata_not_found"), name


async def test_unpublished_or_mismatched_targets_are_not_served(http: httpx.AsyncClient) -> None:
    created = (await upload(http)).json()
    path = f"/ota/image/targets/{created['sha256']}.{created['target_path']}"
    assert (await http.get(path)).status_code == 404
    await http.post(f"/v1/ota/artifacts/{created['id']}/publish", headers=ADMIN)
    assert (await http.get(path)).status_code == 200
    wrong_hash = f"/ota/image/targets/{'0' * 64}.{created['target_path']}"
    assert (await http.get(wrong_hash)).json()["code"] == "target_not_found"
    assert (await http.get("/ota/image/targets/tcu-fw-2.1.0")).status_code == 404


# -- range requests -----------------------------------------------------------------------------


async def test_range_requests_resume_a_download(http: httpx.AsyncClient) -> None:
    body = await published(http)
    path, etag = body["download_path"], f'"{body["sha256"]}"'

    whole = await http.get(path)
    assert whole.headers["etag"] == etag
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-length"] == str(len(IMAGE))

    first = await http.get(path, headers={"Range": "bytes=0-99999"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-99999/{len(IMAGE)}"
    rest = await http.get(path, headers={"Range": "bytes=100000-", "If-Range": etag})
    assert rest.status_code == 206
    assert rest.headers["content-length"] == str(len(IMAGE) - 100_000)
    assert first.content + rest.content == IMAGE

    suffix = await http.get(path, headers={"Range": "bytes=-10"})
    assert (suffix.status_code, suffix.content) == (206, IMAGE[-10:])
    past_end = await http.get(path, headers={"Range": f"bytes={len(IMAGE)}-"})
    assert past_end.status_code == 416
    assert past_end.headers["content-range"] == f"bytes */{len(IMAGE)}"
    assert past_end.json()["code"] == "range_not_satisfiable"

    changed = await http.get(path, headers={"Range": "bytes=10-", "If-Range": '"other"'})
    assert (changed.status_code, changed.content) == (200, IMAGE)
    several = await http.get(path, headers={"Range": "bytes=0-1,5-6"})
    assert (several.status_code, several.content) == (200, IMAGE)
    cached = await http.get(path, headers={"If-None-Match": etag})
    assert (cached.status_code, cached.content) == (304, b"")

    head = await http.head(path, headers={"Range": "bytes=5-14"})
    assert head.status_code == 206
    assert head.headers["content-length"] == "10"
    assert head.content == b""


async def test_a_damaged_artifact_file_is_not_served(
    http: httpx.AsyncClient, ota: OtaFixture
) -> None:
    body = await published(http)
    ota.service.artifacts.files.path(body["sha256"]).write_bytes(IMAGE[:-1])
    response = await http.get(body["download_path"])
    assert (response.status_code, response.json()["code"]) == (500, "artifact_content_missing")
