"""The HTTP API against a real database and broker: auth, health, vehicles, state, OpenAPI;
and the vehicle registry behind it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app
from api.settings import MAX_PAGE_LIMIT, ApiSettings
from api.vehicle_registry import (
    VehicleAlreadyRegisteredError,
    VehicleNotFoundError,
    VehicleRegistry,
    VehicleSpec,
)
from broker.policy import VehicleIdentity
from fleetlink.embedded_postgres import free_port
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading
from protocol.catalogue import Powertrain
from protocol.endpoint import MqttEndpoint
from protocol.vin import Vin

ADMIN_TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VIN = Vin("WVWZZZ1JZXW000001")
UNKNOWN_VIN = "1HGCM82633A004352"
FUEL_LEVEL = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
OIL_LEVEL = "Vehicle.Powertrain.CombustionEngine.EngineOil.Level"


def spec(vin: str, powertrain: Powertrain = Powertrain.ICE) -> VehicleSpec:
    return VehicleSpec(
        vin=Vin(vin), brand="Volkswagen", model="Golf", model_year=2021, powertrain=powertrain
    )


def numbered_vin(n: int) -> str:
    return f"TESTV{n:012d}"


@asynccontextmanager
async def running_api(
    database: Any, mqtt: MqttEndpoint, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ApiSettings(admin_token=ADMIN_TOKEN, **settings), mqtt=mqtt, database=database)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fleetlink.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def client(pool: asyncpg.Pool, amqtt_broker: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with running_api(pool, amqtt_broker.endpoint()) as api:
        yield api


@pytest.fixture
def registry(pool: asyncpg.Pool) -> VehicleRegistry:
    return VehicleRegistry(pool)


# -- authentication -------------------------------------------------------------------------------


BAD_AUTH_HEADERS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer wrong-token-but-long-enough-to-look-real"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    {"Authorization": f"Basic {ADMIN_TOKEN}"},
    {"Authorization": ADMIN_TOKEN},
]


@pytest.mark.parametrize("path", ["/v1/vehicles", f"/v1/vehicles/{VIN}/state"])
async def test_vehicle_routes_require_the_admin_token(client: httpx.AsyncClient, path: str) -> None:
    for headers in BAD_AUTH_HEADERS:
        response = await client.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
        body = response.json()
        assert body["code"] == "not_authenticated"
        assert body["message"]


async def test_the_admin_token_opens_the_vehicle_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/vehicles", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"data": [], "count": 0}


# -- health ---------------------------------------------------------------------------------------


async def test_healthz_is_ok_when_database_and_broker_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")  # no token: probes are unauthenticated
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": {"status": "ok", "detail": None},
        "broker": {"status": "ok", "detail": None},
    }


async def test_healthz_is_degraded_when_the_broker_is_unreachable(pool: asyncpg.Pool) -> None:
    closed = MqttEndpoint("127.0.0.1", free_port())
    async with running_api(pool, closed, health_timeout_ms=1_000) as api:
        response = await api.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == {"status": "ok", "detail": None}
    assert body["broker"]["status"] == "error"
    assert body["broker"]["detail"]


async def test_a_pool_factory_is_opened_and_closed_by_the_lifespan(
    database_url: str, amqtt_broker: Any
) -> None:
    opened: list[asyncpg.Pool] = []

    async def factory() -> asyncpg.Pool:
        pool: asyncpg.Pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        opened.append(pool)
        return pool

    async with running_api(factory, amqtt_broker.endpoint()) as api:
        assert (await api.get("/healthz")).status_code == 200
        assert not opened[0].is_closing()
    assert len(opened) == 1
    assert opened[0].is_closing()


# -- GET /v1/vehicles -----------------------------------------------------------------------------


async def test_vehicle_list_pages_with_limit_and_offset(
    client: httpx.AsyncClient, registry: VehicleRegistry
) -> None:
    vins = [numbered_vin(n) for n in range(7)]
    for vin in vins:
        await registry.register(spec(vin))

    async def page(**params: int) -> dict[str, Any]:
        response = await client.get("/v1/vehicles", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    everything = await page(limit=MAX_PAGE_LIMIT)
    assert everything["count"] == 7
    assert [v["vin"] for v in everything["data"]] == vins  # registration order

    pages = [await page(limit=3, offset=offset) for offset in (0, 3, 6)]
    assert [len(p["data"]) for p in pages] == [3, 3, 1]
    assert all(p["count"] == 7 for p in pages)
    assert [v["vin"] for p in pages for v in p["data"]] == vins
    assert await page(limit=3, offset=3) == pages[1]  # stable across requests

    beyond = await page(limit=3, offset=7)
    assert beyond == {"data": [], "count": 7}

    first = everything["data"][0]
    assert first == {
        "vin": vins[0],
        "brand": "Volkswagen",
        "model": "Golf",
        "model_year": 2021,
        "powertrain": "ice",
        "created_at": first["created_at"],
        "revoked": False,
        "last_seen_at": None,
    }
    assert "secret_hash" not in first


async def test_vehicle_list_rejects_bad_paging(client: httpx.AsyncClient) -> None:
    for params in (
        {"limit": MAX_PAGE_LIMIT + 1},
        {"limit": 0},
        {"offset": -1},
        {"limit": "many"},
    ):
        response = await client.get("/v1/vehicles", params=params, headers=AUTH)
        assert response.status_code == 422, params


# -- GET /v1/vehicles/{vin}/state -----------------------------------------------------------------


async def test_state_of_a_malformed_vin_is_422(client: httpx.AsyncClient) -> None:
    for vin in ("WVWZZZ1JZXW00000I", "wvwzzz1jzxw000001", "WVWZZZ1JZXW00001", "WVWZZZ1JZXW0000011"):
        response = await client.get(f"/v1/vehicles/{vin}/state", headers=AUTH)
        assert response.status_code == 422, vin


async def test_state_of_an_unknown_vehicle_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1/vehicles/{UNKNOWN_VIN}/state", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert UNKNOWN_VIN in response.json()["message"]


async def test_state_of_a_silent_vehicle_is_empty(
    client: httpx.AsyncClient, registry: VehicleRegistry
) -> None:
    await registry.register(spec(VIN))
    response = await client.get(f"/v1/vehicles/{VIN}/state", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"vin": VIN, "signals": {}, "updated_at": None}


async def test_state_restores_value_types_and_reports_the_newest_sample_time(
    client: httpx.AsyncClient, registry: VehicleRegistry, pool: asyncpg.Pool
) -> None:
    await registry.register(spec(VIN))
    t0 = datetime(2025, 11, 23, 8, 0, tzinfo=UTC)
    rows = [
        ("Vehicle.Speed", t0, 52.5, None),
        ("Vehicle.IsMoving", t0 + timedelta(seconds=1), 1.0, None),
        (FUEL_LEVEL, t0 + timedelta(seconds=2), 42.0, None),
        (OIL_LEVEL, t0 + timedelta(seconds=3), None, "NORMAL"),
        ("Vehicle.Vendor.Custom.Torque", t0 + timedelta(seconds=9), 3.0, None),
        ("Vehicle.Vendor.Custom.Flag", t0 + timedelta(seconds=4), 1.0, None),
    ]
    batch = Batch()
    batch.add_readings(
        VIN, [Reading(name, int(ts.timestamp() * 1000), v, text) for name, ts, v, text in rows]
    )
    # another car's state must not leak into this one
    batch.add_readings(
        UNKNOWN_VIN, [Reading("Vehicle.Speed", int(t0.timestamp() * 1000) + 3_600_000, 1.0, None)]
    )
    await TelemetryStore(pool).write(batch)

    response = await client.get(f"/v1/vehicles/{VIN}/state", headers=AUTH)

    assert response.status_code == 200
    body = response.json()
    assert body["vin"] == VIN
    signals = body["signals"]
    assert set(signals) == {row[0] for row in rows}
    values = {name: s["value"] for name, s in signals.items()}
    assert values["Vehicle.Speed"] == 52.5
    assert values["Vehicle.IsMoving"] is True
    assert values[FUEL_LEVEL] == 42
    assert type(values[FUEL_LEVEL]) is int
    assert values[OIL_LEVEL] == "NORMAL"
    # unknown signals are kept, as numbers: no catalogue entry says they are flags or integers
    assert values["Vehicle.Vendor.Custom.Torque"] == 3.0
    assert type(values["Vehicle.Vendor.Custom.Torque"]) is float
    assert type(values["Vehicle.Vendor.Custom.Flag"]) is float
    assert datetime.fromisoformat(signals[FUEL_LEVEL]["ts"]) == t0 + timedelta(seconds=2)
    assert datetime.fromisoformat(body["updated_at"]) == t0 + timedelta(seconds=9)

    listing = (await client.get("/v1/vehicles", headers=AUTH)).json()
    assert datetime.fromisoformat(listing["data"][0]["last_seen_at"]) == t0 + timedelta(seconds=9)


# -- OpenAPI --------------------------------------------------------------------------------------


async def test_openapi_lists_the_paths_and_declares_bearer_security(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    assert {"/healthz", "/v1/vehicles", "/v1/vehicles/{vin}/state"} <= set(paths)
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= next(iter(schemes.values())).items()
    scheme_name = next(iter(schemes))
    for path in ("/v1/vehicles", "/v1/vehicles/{vin}/state"):
        assert paths[path]["get"]["security"] == [{scheme_name: []}], path
        assert "401" in paths[path]["get"]["responses"], path
    assert "security" not in paths["/healthz"]["get"]
    assert "404" in paths["/v1/vehicles/{vin}/state"]["get"]["responses"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


# -- the vehicle registry -------------------------------------------------------------------------


async def test_registering_a_vin_twice_fails(registry: VehicleRegistry) -> None:
    await registry.register(spec(VIN))
    with pytest.raises(VehicleAlreadyRegisteredError) as error:
        await registry.register(spec(VIN, Powertrain.BEV))
    assert error.value.vin == VIN
    assert error.value.code == "vehicle_already_registered"
    record = await registry.get(VIN)
    assert record is not None
    assert record.powertrain == "ice"  # the first registration stands


async def test_verify_accepts_only_the_issued_secret(
    registry: VehicleRegistry, pool: asyncpg.Pool
) -> None:
    credentials = await registry.register(spec(VIN))
    assert credentials.username == VIN
    assert len(credentials.password) >= 32
    assert await registry.verify(VIN, credentials.password) == VehicleIdentity(VIN)
    assert await registry.verify(VIN, credentials.password + "x") is None
    assert await registry.verify(VIN, "") is None
    assert await registry.verify("svc-ingest", credentials.password) is None
    assert await registry.verify(UNKNOWN_VIN, credentials.password) is None
    stored = await pool.fetchval("SELECT secret_hash FROM vehicles WHERE vin = $1", VIN)
    assert credentials.password not in stored


async def test_a_revoked_vehicle_no_longer_verifies(
    pool: asyncpg.Pool, registry: VehicleRegistry
) -> None:
    credentials = await registry.register(spec(VIN))
    await pool.execute("UPDATE vehicles SET revoked_at = now() WHERE vin = $1", VIN)
    assert await VehicleRegistry(pool).verify(VIN, credentials.password) is None


async def test_rotating_a_secret_retires_the_old_one_immediately(
    registry: VehicleRegistry,
) -> None:
    old = await registry.register(spec(VIN))
    assert await registry.verify(VIN, old.password) is not None  # now cached
    new = await registry.rotate_secret(VIN)
    assert new is not None
    assert new.password != old.password
    assert await registry.verify(VIN, old.password) is None
    assert await registry.verify(VIN, new.password) == VehicleIdentity(VIN)


async def test_rotating_an_unknown_vin_is_a_typed_error(registry: VehicleRegistry) -> None:
    with pytest.raises(VehicleNotFoundError) as raised:
        await registry.rotate_secret(UNKNOWN_VIN)
    assert raised.value.code == "vehicle_not_found" and raised.value.vin == UNKNOWN_VIN


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token", ["", "changeme", "CHANGEME", "admin", "secret", "token", "short-but-random-7f3a"]
)
def test_api_settings_refuse_placeholder_and_short_tokens(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEETLINK_API_ADMIN_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="FLEETLINK_API_ADMIN_TOKEN"):
        ApiSettings(admin_token=token)


def test_api_settings_refuse_a_missing_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETLINK_API_ADMIN_TOKEN", raising=False)
    with pytest.raises(ValidationError):
        ApiSettings()


def test_api_settings_accept_a_random_token_without_revealing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEETLINK_API_ADMIN_TOKEN", ADMIN_TOKEN)
    settings = ApiSettings()
    assert settings.admin_token.get_secret_value() == ADMIN_TOKEN
    assert ADMIN_TOKEN not in repr(settings)
