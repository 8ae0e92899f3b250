"""A running API with customers, service clients and vehicles, for the customer-platform tests.

Not a conftest: the tests import what they use, so the fixtures they depend on are explicit.
The app runs against the per-test PostgreSQL database (``pool``) with a clock the test moves.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from api.app import create_app
from api.settings import ApiSettings
from api.vehicle_registry import VehicleRegistry, VehicleSpec
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading
from protocol.catalogue import Powertrain
from protocol.endpoint import MqttEndpoint
from protocol.vin import Vin

ADMIN_TOKEN = secrets.token_urlsafe(32)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "correct horse battery staple"
VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"
# No vehicles table row: MQTT endpoint is never dialled by these tests (only /healthz would).
# Light argon2 so a test can create a dozen accounts in well under a second.
CHEAP_HASHING = {"password_hash_time_cost": 1, "password_hash_memory_kib": 1024}
NO_BROKER = MqttEndpoint("127.0.0.1", 1)


@dataclass
class FakeClock:
    """UTC epoch milliseconds, moved by the test."""

    ms: int = field(default_factory=lambda: int(datetime.now(UTC).timestamp() * 1000))

    def now_ms(self) -> int:
        return self.ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def advance(self, delta: timedelta) -> None:
        self.ms += int(delta.total_seconds() * 1000)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Platform:
    http: httpx.AsyncClient
    pool: asyncpg.Pool
    clock: FakeClock
    app: Any

    async def customer(self, email: str, **profile: Any) -> str:
        body = {"email": email, "password": PASSWORD, **profile}
        response = await self.http.post("/v1/customers", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        customer_id: str = response.json()["id"]
        return customer_id

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        response = await self.http.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
        assert response.status_code == 200, response.text
        return bearer(response.json()["access_token"])

    async def client(self, client_id: str, role: str, centres: list[str]) -> dict[str, str]:
        """Create a service client and return the headers of a token for it."""
        created = await self.http.post(
            "/v1/auth/clients",
            json={"client_id": client_id, "name": client_id, "role": role, "centres": centres},
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        response = await self.http.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": created.json()["client_secret"],
            },
        )
        assert response.status_code == 200, response.text
        return bearer(response.json()["access_token"])

    async def vehicle(self, vin: str) -> None:
        await VehicleRegistry(self.pool).register(
            VehicleSpec(Vin(vin), "VW", "ID.3", 2024, Powertrain.BEV)
        )

    async def link(self, vin: str, customer_id: str) -> dict[str, Any]:
        response = await self.http.put(
            f"/v1/vehicles/{vin}/owner", json={"customer_id": customer_id}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        period: dict[str, Any] = response.json()
        return period

    async def samples(self, vin: str, signal: str, values: list[tuple[datetime, float]]) -> None:
        """Store samples through ingest's own writer (telemetry and latest state)."""
        batch = Batch()
        batch.add_readings(
            vin, [Reading(signal, int(ts.timestamp() * 1000), v, None) for ts, v in values]
        )
        await TelemetryStore(self.pool).write(batch)


@asynccontextmanager
async def running_platform(pool: asyncpg.Pool, **settings: Any) -> AsyncIterator[Platform]:
    clock = FakeClock()
    app = create_app(
        ApiSettings(admin_token=ADMIN_TOKEN, **{**CHEAP_HASHING, **settings}),
        mqtt=NO_BROKER,
        database=pool,
        clock=clock,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("192.0.2.10", 40000)),
            base_url="http://fleetlink.test",
        ) as http,
    ):
        yield Platform(http, pool, clock, app)


async def other_address(platform: Platform) -> httpx.AsyncClient:
    """A second HTTP client to the same app, from another address."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=platform.app, client=("198.51.100.7", 40000)),
        base_url="http://fleetlink.test",
    )
