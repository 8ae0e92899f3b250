"""Review findings on the API: secrets kept out of errors and caches, one error shape, input
PostgreSQL cannot store refused up front, and the registry's revocation races closed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app
from api.settings import ApiSettings
from api.vehicle_registry import (
    VehicleNotFoundError,
    VehicleRegistry,
    VehicleRevokedError,
    VehicleSpec,
)
from broker.fleet_ca import FleetCA
from fleetlink.embedded_postgres import free_port
from protocol.catalogue import Powertrain
from protocol.endpoint import MqttEndpoint
from protocol.vin import Vin

ADMIN_TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VIN = Vin("WVWZZZ1JZXW000001")
UNKNOWN_VIN = "1HGCM82633A004352"


def spec(vin: str) -> VehicleSpec:
    return VehicleSpec(
        vin=Vin(vin), brand="Volkswagen", model="Golf", model_year=2021, powertrain=Powertrain.ICE
    )


def vehicle_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "vin": VIN,
        "brand": "Volkswagen",
        "model": "Golf",
        "model_year": 2021,
        "powertrain": "ice",
    }
    return body | overrides


@asynccontextmanager
async def running_api(
    pool: asyncpg.Pool, mqtt: MqttEndpoint | None = None, *, fleet_ca: FleetCA | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        ApiSettings(admin_token=ADMIN_TOKEN, health_timeout_ms=1_000),
        mqtt=mqtt or MqttEndpoint("127.0.0.1", free_port()),
        database=pool,
        fleet_ca=fleet_ca,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fleetlink.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def client(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with running_api(pool, fleet_ca=FleetCA.create(now=datetime.now(UTC))) as api:
        yield api


@pytest.fixture
def registry(pool: asyncpg.Pool) -> VehicleRegistry:
    return VehicleRegistry(pool)


# -- 1. the admin token never appears in a settings error ----------------------------------------


def test_a_refused_admin_token_is_not_echoed_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "short-but-random-7f3a"  # refused: too short
    monkeypatch.delenv("FLEETLINK_API_ADMIN_TOKEN", raising=False)
    with pytest.raises(ValidationError) as from_argument:
        ApiSettings(admin_token=token)
    assert "FLEETLINK_API_ADMIN_TOKEN" in str(from_argument.value)
    assert token not in str(from_argument.value)

    monkeypatch.setenv("FLEETLINK_API_ADMIN_TOKEN", token)
    with pytest.raises(ValidationError) as from_environment:
        ApiSettings()
    assert token not in str(from_environment.value)


# -- 2. rotating a revoked vehicle's secret changes nothing ---------------------------------------


async def test_rotating_a_revoked_vehicle_leaves_its_credentials_untouched(
    registry: VehicleRegistry, pool: asyncpg.Pool
) -> None:
    await registry.register(spec(VIN))
    await registry.revoke(VIN)
    query = (
        "SELECT secret_hash, mosquitto_hash, credentials_rotated_at FROM vehicles WHERE vin = $1"
    )
    before = await pool.fetchrow(query, VIN)

    with pytest.raises(VehicleRevokedError) as raised:
        await registry.rotate_secret(VIN)

    assert raised.value.vin == VIN
    assert await pool.fetchrow(query, VIN) == before
    assert before is not None and before["credentials_rotated_at"] is None
    with pytest.raises(VehicleNotFoundError):
        await registry.rotate_secret(UNKNOWN_VIN)


async def test_rotating_a_revoked_vehicle_over_http_is_409(
    client: httpx.AsyncClient, registry: VehicleRegistry
) -> None:
    await registry.register(spec(VIN))
    await registry.revoke(VIN)
    response = await client.post(f"/v1/vehicles/{VIN}/credentials/rotate", headers=AUTH)
    assert response.status_code == 409
    assert response.json()["code"] == "vehicle_revoked"


# -- 3. responses carrying secrets are not cached ------------------------------------------------


def assert_not_cacheable(response: httpx.Response) -> None:
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


async def test_responses_with_passwords_or_keys_are_marked_no_store(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/v1/vehicles", json=vehicle_body(), headers=AUTH)
    assert created.status_code == 201, created.text
    assert created.json()["credentials"]["password"]
    assert_not_cacheable(created)

    rotated = await client.post(f"/v1/vehicles/{VIN}/credentials/rotate", headers=AUTH)
    assert rotated.status_code == 200, rotated.text
    assert_not_cacheable(rotated)

    issued = await client.post(f"/v1/vehicles/{VIN}/certificates", json={}, headers=AUTH)
    assert issued.status_code == 201, issued.text
    assert issued.json()["private_key_pem"]
    assert_not_cacheable(issued)

    listing = await client.get("/v1/vehicles", headers=AUTH)
    assert "no-store" not in listing.headers.get("Cache-Control", "")


# -- 4. control characters are refused before they reach PostgreSQL -------------------------------


@pytest.mark.parametrize(
    "body",
    [
        vehicle_body(model="Golf\x00"),
        vehicle_body(brand="Volks\x1bwagen"),
        vehicle_body(model="Golf\x7f"),
        vehicle_body(ecus=[{"ecu_id": "gw\x00", "hardware_id": "GW-1", "software_version": "1"}]),
        vehicle_body(ecus=[{"ecu_id": "gw", "hardware_id": "GW\x00-1", "software_version": "1"}]),
        vehicle_body(ecus=[{"ecu_id": "gw", "hardware_id": "GW-1", "software_version": "1\n"}]),
    ],
)
async def test_control_characters_in_vehicle_fields_are_422(
    client: httpx.AsyncClient, pool: asyncpg.Pool, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/vehicles", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert await pool.fetchval("SELECT count(*) FROM vehicles") == 0


async def test_ordinary_unicode_labels_are_still_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/vehicles",
        json=vehicle_body(brand="Citroën", model="ë-C4 Shine 日本"),
        headers=AUTH,
    )
    assert response.status_code == 201, response.text


# -- 5. one error shape --------------------------------------------------------------------------


async def test_validation_errors_use_the_api_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/vehicles", json=vehicle_body(model_year=1900, extra=1), headers=AUTH
    )
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == "invalid_request"
    assert "model_year" in body["message"]
    locs = [error["loc"] for error in body["errors"]]
    assert ["body", "model_year"] in locs
    assert ["body", "extra"] in locs
    assert all(set(error) == {"loc", "msg"} for error in body["errors"])

    malformed = await client.post(
        "/v1/vehicles",
        content=b"{not json",
        headers=AUTH | {"Content-Type": "application/json"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["code"] == "invalid_request"

    query = await client.get("/v1/vehicles", params={"limit": "many"}, headers=AUTH)
    assert query.status_code == 422
    assert query.json()["errors"][0]["loc"] == ["query", "limit"]


async def test_unknown_routes_and_methods_use_the_api_error_shape(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/v1/nothing-here", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json() == {"code": "not_found", "message": "Not Found"}

    wrong_method = await client.delete("/v1/vehicles", headers=AUTH)
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"code": "method_not_allowed", "message": "Method Not Allowed"}
    assert "GET" in wrong_method.headers["Allow"]


async def test_openapi_declares_the_api_error_shape_for_422(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in str(schema)
    declared = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            response = operation["responses"].get("422")
            if response is None:
                continue
            declared += 1
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/ErrorBody", (path, method)
    assert declared >= 5
    error_body = schema["components"]["schemas"]["ErrorBody"]
    assert {"code", "message", "errors"} <= set(error_body["properties"])


# -- 6. /healthz keeps error text for admins ------------------------------------------------------


async def test_healthz_shows_only_the_error_class_without_the_admin_token(
    pool: asyncpg.Pool,
) -> None:
    closed = MqttEndpoint("127.0.0.1", free_port())
    async with running_api(pool, closed) as api:
        for headers in ({}, {"Authorization": "Bearer not-the-admin-token-at-all-no"}):
            anonymous = await api.get("/healthz", headers=headers)
            assert anonymous.status_code == 503
            detail = anonymous.json()["broker"]["detail"]
            assert detail in {"ConnectionRefusedError", "OSError", "TimeoutError"}, detail
            assert str(closed.port) not in anonymous.text

        admin = await api.get("/healthz", headers=AUTH)
    assert admin.status_code == 503
    detail = admin.json()["broker"]["detail"]
    assert detail.startswith(anonymous.json()["broker"]["detail"] + ": ")
    assert str(closed.port) in detail


async def test_healthz_hides_database_error_text_without_the_admin_token(
    database_url: str,
) -> None:
    broken: asyncpg.Pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await broken.close()
    async with running_api(broken) as api:
        anonymous = await api.get("/healthz")
        admin = await api.get("/healthz", headers=AUTH)
    assert anonymous.json()["database"] == {"status": "error", "detail": "InterfaceError"}
    assert admin.json()["database"]["detail"].startswith("InterfaceError: ")
    assert "closed" in admin.json()["database"]["detail"]


# -- 7. a certificate issued during a revocation is never left unrevoked --------------------------


async def test_recording_a_certificate_after_revocation_is_refused(
    client: httpx.AsyncClient, registry: VehicleRegistry, pool: asyncpg.Pool
) -> None:
    await registry.register(spec(VIN))
    await registry.revoke(VIN)
    issued = FleetCA.create(now=datetime.now(UTC)).issue_vehicle_certificate(
        VIN, now=datetime.now(UTC)
    )
    with pytest.raises(VehicleRevokedError):
        await registry.record_certificate(issued)
    with pytest.raises(VehicleNotFoundError):
        await registry.record_certificate(
            FleetCA.create(now=datetime.now(UTC)).issue_vehicle_certificate(
                UNKNOWN_VIN, now=datetime.now(UTC)
            )
        )
    response = await client.post(f"/v1/vehicles/{VIN}/certificates", json={}, headers=AUTH)
    assert response.status_code == 409
    assert response.json()["code"] == "vehicle_revoked"
    assert await pool.fetchval("SELECT count(*) FROM vehicle_certificates") == 0


async def test_recording_a_certificate_waits_for_a_concurrent_revocation(
    registry: VehicleRegistry, pool: asyncpg.Pool, database_url: str
) -> None:
    await registry.register(spec(VIN))
    issued = FleetCA.create(now=datetime.now(UTC)).issue_vehicle_certificate(
        VIN, now=datetime.now(UTC)
    )
    revoker = await asyncpg.connect(database_url)
    try:
        # VehicleRegistry.revoke's statements, held open: the vehicle row is locked and its
        # certificate UPDATE has already run when the recording starts.
        revocation = revoker.transaction()
        await revocation.start()
        await revoker.execute("UPDATE vehicles SET revoked_at = now() WHERE vin = $1", VIN)
        await revoker.execute(
            "UPDATE vehicle_certificates SET revoked_at = now()"
            " WHERE vin = $1 AND revoked_at IS NULL",
            VIN,
        )
        recording = asyncio.create_task(registry.record_certificate(issued))
        async with asyncio.timeout(10):
            while not recording.done():
                waiting = await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
        assert not recording.done(), "the certificate was recorded past an uncommitted revoke"
        await revocation.commit()
    finally:
        await revoker.close()

    with pytest.raises(VehicleRevokedError):
        await recording
    unrevoked = await pool.fetchval(
        "SELECT count(*) FROM vehicle_certificates WHERE vin = $1 AND revoked_at IS NULL", VIN
    )
    assert unrevoked == 0


# -- 8. the revoked error tells the truth ---------------------------------------------------------


def test_the_revoked_error_does_not_promise_re_registration() -> None:
    message = str(VehicleRevokedError(VIN))
    assert "register it again" not in message
    assert "re-admission is not supported" in message
