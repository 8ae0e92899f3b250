"""`fleetlink up` end to end: embedded PostgreSQL, amqtt, ingest, API and simulated cars, all
real, talking over loopback; then a restart on the same data directory."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from fleetlink.embedded_postgres import free_port
from fleetlink.runtime import RunningStack, UpOptions, embedded_stack
from ingest.settings import IngestSettings

pytestmark = pytest.mark.e2e

VEHICLES = 5


def options(data_dir: Path) -> UpOptions:
    return UpOptions(
        data_dir=data_dir,
        vehicles=VEHICLES,
        mqtt_port=free_port(),
        api_port=free_port(),
        db_fsync=False,
        publish_interval_s=2.0,
        ingest=IngestSettings(flush_interval_ms=100),
    )


async def fresh_states(stack: RunningStack, client: httpx.AsyncClient) -> dict[str, datetime]:
    """VIN -> newest sample time, for every listed vehicle that has state."""
    listing = (await client.get(f"{stack.api_url}/v1/vehicles")).json()
    states: dict[str, datetime] = {}
    for vehicle in listing["data"]:
        state = (await client.get(f"{stack.api_url}/v1/vehicles/{vehicle['vin']}/state")).json()
        if state["updated_at"]:
            states[vehicle["vin"]] = datetime.fromisoformat(state["updated_at"])
    return states


async def test_up_serves_every_vehicle_and_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "fleetlink"
    async with embedded_stack(options(data_dir)) as stack:
        headers = {"Authorization": f"Bearer {stack.admin_token}"}
        assert (data_dir / "admin.token").read_text().strip() == stack.admin_token
        async with httpx.AsyncClient(headers=headers, timeout=10) as client:
            health = await client.get(f"{stack.api_url}/healthz")
            assert health.status_code == 200, health.text
            assert (
                await client.get(
                    f"{stack.api_url}/v1/vehicles", headers={"Authorization": "Bearer wrong"}
                )
            ).status_code == 401

            deadline = time.monotonic() + 30
            states: dict[str, datetime] = {}
            while time.monotonic() < deadline:
                states = await fresh_states(stack, client)
                if len(states) == VEHICLES:
                    break
                await asyncio.sleep(0.5)
            assert len(states) == VEHICLES, f"only {len(states)} vehicles have state"
            listing = (await client.get(f"{stack.api_url}/v1/vehicles")).json()
            assert listing["count"] == VEHICLES
            now = datetime.now(UTC)
            assert all((now - ts).total_seconds() < 15 for ts in states.values()), states
            vins = {v["vin"] for v in listing["data"]}
            a_vin = sorted(vins)[0]
            signals = (await client.get(f"{stack.api_url}/v1/vehicles/{a_vin}/state")).json()
            assert "Vehicle.Speed" in signals["signals"]
            assert "Vehicle.TraveledDistance" in signals["signals"]
        assert stack.ingest.stats.rejects == {}
        dsn = stack.postgres.dsn("postgres")

    # Everything stopped: the database no longer answers.
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await asyncpg.connect(dsn, timeout=2)

    # Start again on the same directory: same vehicles, history kept and growing.
    async with embedded_stack(options(data_dir)) as stack:
        conn = await asyncpg.connect(stack.postgres.dsn("postgres"))
        try:
            before = await conn.fetchval("SELECT count(*) FROM telemetry_values")
            assert before > 0
            assert {r["vin"] for r in await conn.fetch("SELECT vin FROM vehicles")} == vins
            deadline = time.monotonic() + 20
            while await conn.fetchval("SELECT count(*) FROM telemetry_values") <= before:
                assert time.monotonic() < deadline, "no new telemetry after restart"
                await asyncio.sleep(0.5)
            # Each car resumed its message counter where it stopped (like a car's non-volatile
            # memory): a clean restart shows no sequence gap and no duplicate.
            deadline = time.monotonic() + 20
            while await conn.fetchval("SELECT count(*) FROM ingest_sequences") < VEHICLES:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.5)
            counts = await conn.fetchrow(
                "SELECT sum(gaps) AS gaps, sum(duplicates) AS duplicates FROM ingest_sequences"
            )
            assert (counts["gaps"], counts["duplicates"]) == (0, 0)
        finally:
            await conn.close()
        headers = {"Authorization": f"Bearer {stack.admin_token}"}
        async with httpx.AsyncClient(headers=headers, timeout=10) as client:
            listing = (await client.get(f"{stack.api_url}/v1/vehicles")).json()
            assert {v["vin"] for v in listing["data"]} == vins
