"""``/ota/director/{vin}/``: who may fetch which vehicle's director metadata. A car with its
own VIN and secret gets its own files; another car's path answers 404 as for an unknown car;
no or wrong credentials answer 401 with a Basic challenge; administrators may read any."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.app import create_app
from api.settings import ApiSettings
from protocol.endpoint import MqttEndpoint
from tests.ota.conftest import OtaFixture
from tests.ota.test_campaign_world import director, register

pytestmark = pytest.mark.integration
ADMIN_TOKEN = "director-test-admin-token-0123456789abcdef"
VIN_A, VIN_B = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"
NO_BROKER = MqttEndpoint("127.0.0.1", 1)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def client(pool: asyncpg.Pool, ota: OtaFixture | None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        ApiSettings(admin_token=ADMIN_TOKEN),
        mqtt=NO_BROKER,
        database=pool,
        ota=ota.service if ota else None,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fleetlink.test"
        ) as http,
    ):
        yield http


@pytest.fixture
async def http(
    pool: asyncpg.Pool, ota: OtaFixture, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    await director(pool, ota, tmp_path)
    async for opened in client(pool, ota):
        yield opened


async def test_a_car_reads_its_own_metadata_as_a_tuf_client_would(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    secret = await register(pool, VIN_A)
    car = basic(VIN_A, secret)
    root = await http.get(f"/ota/director/{VIN_A}/1.root.json", headers=car)
    assert root.status_code == 200 and json.loads(root.content)["signed"]["_type"] == "root"
    assert (await http.get(f"/ota/director/{VIN_A}/2.root.json", headers=car)).status_code == 404
    timestamp = await http.get(f"/ota/director/{VIN_A}/timestamp.json", headers=car)
    assert timestamp.status_code == 200
    assert timestamp.headers["cache-control"] == "no-store"
    snapshot_version = json.loads(timestamp.content)["signed"]["meta"]["snapshot.json"]["version"]
    snapshot = await http.get(
        f"/ota/director/{VIN_A}/{snapshot_version}.snapshot.json", headers=car
    )
    assert snapshot.status_code == 200
    targets_version = json.loads(snapshot.content)["signed"]["meta"]["targets.json"]["version"]
    targets = await http.get(f"/ota/director/{VIN_A}/{targets_version}.targets.json", headers=car)
    assert json.loads(targets.content)["signed"]["custom"]["vin"] == VIN_A
    assert (await http.get(f"/ota/director/{VIN_A}/root.json", headers=car)).status_code == 404


async def test_a_car_cannot_read_another_cars_metadata(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    secret_a = await register(pool, VIN_A)
    secret_b = await register(pool, VIN_B)
    assert (
        await http.get(f"/ota/director/{VIN_B}/timestamp.json", headers=basic(VIN_B, secret_b))
    ).status_code == 200
    foreign = await http.get(
        f"/ota/director/{VIN_B}/timestamp.json", headers=basic(VIN_A, secret_a)
    )
    assert foreign.status_code == 404 and foreign.json()["code"] == "metadata_not_found"
    stored = await http.get(f"/ota/director/{VIN_B}/1.targets.json", headers=basic(VIN_A, secret_a))
    assert stored.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-admin-token"},
        basic(VIN_A, "wrong secret"),
        basic("not-a-vin", "x"),
    ],
    ids=["none", "bearer", "wrong-secret", "not-a-vin"],
)
async def test_without_valid_vehicle_credentials_401_with_a_basic_challenge(
    pool: asyncpg.Pool, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await register(pool, VIN_A)
    response = await http.get(f"/ota/director/{VIN_A}/timestamp.json", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="FleetLink director"'
    assert response.json()["code"] == "not_authenticated"


async def test_administrators_read_any_vehicle_and_bad_names_are_404(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    await register(pool, VIN_A)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert (
        await http.get(f"/ota/director/{VIN_A}/timestamp.json", headers=admin)
    ).status_code == 200
    assert (await http.get(f"/ota/director/{VIN_A}/x.json", headers=admin)).status_code == 404


async def test_without_the_ota_service_the_director_answers_503_after_authentication(
    pool: asyncpg.Pool,
) -> None:
    secret = await register(pool, VIN_A)
    async for http in client(pool, None):
        assert (await http.get(f"/ota/director/{VIN_A}/timestamp.json")).status_code == 401
        response = await http.get(
            f"/ota/director/{VIN_A}/timestamp.json", headers=basic(VIN_A, secret)
        )
        assert response.status_code == 503 and response.json()["code"] == "ota_unavailable"
