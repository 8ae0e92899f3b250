"""Without the owner's location consent no position is stored (issue 7, ingest's side): the
worker drops Vehicle.CurrentLocation.* of such a car, follows consent changes made through the
API within seconds, and removes the last known position from the latest state on withdrawal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from ingest.consumer import IngestWorker
from ingest.location_consent import LocationConsent, without_position
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading
from protocol.topics import telemetry_topic
from tests.api.customer_platform import Platform, running_platform
from tests.ingest.test_worker import (
    VIN_A,
    now_ms,
    running,
    settings,
    telemetry,
    vehicle,
    wait_for,
)

LAT, LON, SPEED = (
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.Speed",
)


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running_:
        yield running_


def test_only_position_signals_are_dropped() -> None:
    readings = [
        Reading(LAT, 1, 48.1, None),
        Reading("Vehicle.CurrentLocation.Heading", 1, 90.0, None),
        Reading(SPEED, 1, 50.0, None),
        Reading("Vehicle.CurrentLocationHistory", 1, 1.0, None),  # not the branch
    ]
    assert [r.signal for r in without_position(readings)] == [
        SPEED,
        "Vehicle.CurrentLocationHistory",
    ]


async def stored(pool: asyncpg.Pool, ts: int) -> set[str]:
    rows = await pool.fetch(
        "SELECT signal FROM telemetry_values WHERE vin = $1"
        " AND ts = to_timestamp($2::float8 / 1000)",
        VIN_A,
        ts,
    )
    return {r["signal"] for r in rows}


async def test_positions_follow_the_owners_location_consent(
    amqtt_broker, pool: asyncpg.Pool, test_vehicles, platform: Platform
) -> None:
    ada = await platform.customer("ada@example.com")
    await platform.vehicle(VIN_A)
    await platform.link(VIN_A, ada)  # linked, no decision yet: no positions
    me = await platform.login("ada@example.com")

    async def consent(granted: bool) -> None:
        response = await platform.http.put(
            "/v1/me/consents",
            json={"source": "app", "purposes": {"location": granted}},
            headers=me,
        )
        assert response.status_code == 200, response.text

    location = LocationConsent(pool)
    worker = IngestWorker(
        TelemetryStore(pool), amqtt_broker.ingest_endpoint, settings(), consent=location
    )
    position = {LAT: 48.137, LON: 11.575, SPEED: 30.0}
    t = now_ms() - 10_000
    async with running(worker), vehicle(amqtt_broker, VIN_A, test_vehicles.passwords[VIN_A]) as car:
        assert location.withheld == {VIN_A}
        await car.publish(telemetry_topic(VIN_A), telemetry(1, (t, position)), qos=1)
        await wait_for(lambda: _has(pool, t, {SPEED}))
        assert worker.stats.positions_withheld == 2

        await consent(True)
        await wait_for(lambda: _now(location.allows(VIN_A)), timeout_s=5)
        await car.publish(telemetry_topic(VIN_A), telemetry(2, (t + 1000, position)), qos=1)
        await wait_for(lambda: _has(pool, t + 1000, {LAT, LON, SPEED}))
        assert await _state_positions(pool) == 2

        await consent(False)
        await wait_for(lambda: _now(not location.allows(VIN_A)), timeout_s=5)
        await wait_for(lambda: _no_state_positions(pool), timeout_s=5)
        await car.publish(telemetry_topic(VIN_A), telemetry(3, (t + 2000, position)), qos=1)
        await wait_for(lambda: _has(pool, t + 2000, {SPEED}))
    # What was stored under consent stays (lawful then); nothing else carries a position.
    assert await stored(pool, t) == {SPEED}
    assert await stored(pool, t + 1000) == {LAT, LON, SPEED}
    assert await stored(pool, t + 2000) == {SPEED}
    assert worker.stats.positions_withheld == 4


async def _has(pool: asyncpg.Pool, ts: int, signals: set[str]) -> bool:
    return await stored(pool, ts) == signals


async def _now(value: bool) -> bool:
    """An already known answer, in the awaitable form wait_for polls."""
    return value


async def _no_state_positions(pool: asyncpg.Pool) -> bool:
    return await _state_positions(pool) == 0


async def _state_positions(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM vehicle_state WHERE vin = $1 AND signal LIKE $2",
        VIN_A,
        "Vehicle.CurrentLocation.%",
    )
    return count


async def test_a_position_written_back_after_the_withdrawal_is_removed_again(
    pool: asyncpg.Pool, platform: Platform
) -> None:
    """A batch built before a withdrawal may commit after the purge (in flight, retried, or
    another worker's): the next reload removes the position it wrote back."""
    ada = await platform.customer("ada@example.com")
    await platform.vehicle(VIN_A)
    await platform.link(VIN_A, ada)  # no location consent
    location = LocationConsent(pool, resync_interval_s=0.2)
    stop = asyncio.Event()
    watcher = asyncio.create_task(location.watch(stop))
    try:
        await asyncio.wait_for(location.ready.wait(), 5)
        assert not location.allows(VIN_A)
        late = Batch()
        late.add_readings(
            VIN_A, [Reading(LAT, now_ms(), 48.1, None), Reading(SPEED, now_ms(), 9.0, None)]
        )
        await TelemetryStore(pool).write(late)  # as the in-flight batch would
        assert await _state_positions(pool) == 1
        await wait_for(lambda: _no_state_positions(pool), timeout_s=5)
        speed = await pool.fetchval(
            "SELECT value FROM vehicle_state WHERE vin = $1 AND signal = $2", VIN_A, SPEED
        )
        assert speed == 9.0  # only the position goes
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 5)
