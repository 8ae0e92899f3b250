"""GET /v1/vehicles/{vin}/events: newest first, filtered by type, paged, unknown fields kept, and
a customer sees only what their car reported since they own it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from ingest.events import VehicleEvent
from ingest.store import Batch, TelemetryStore
from tests.api.customer_platform import ADMIN, VIN_A, Platform, running_platform


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


async def store_events(platform: Platform, *events: tuple[int, int, str, str | None]) -> None:
    batch = Batch()
    for seq, ts_ms, kind, code in events:
        body = json.dumps({"seq": seq, "ts": ts_ms, "type": kind, "code": code, "ecu": "ECM"})
        batch.events.append((VIN_A, VehicleEvent(seq, ts_ms, kind, code, True, body)))
    await TelemetryStore(platform.pool).write(batch)


async def test_events_newest_first_by_type_and_paged(platform: Platform) -> None:
    await platform.vehicle(VIN_A)
    t = platform.clock.ms - 3_600_000
    await store_events(
        platform,
        (1, t, "trip_start", None),
        (2, t + 1000, "dtc", "P0217"),
        (3, t + 2000, "dtc", "P0128"),
    )
    url = f"/v1/vehicles/{VIN_A}/events"
    everything = (await platform.http.get(url, headers=ADMIN)).json()
    assert [e["seq"] for e in everything["data"]] == [3, 2, 1]
    assert everything["count"] == 3
    assert everything["data"][0]["details"] == {"ecu": "ECM"}
    dtcs = (await platform.http.get(url, params={"type": "dtc", "limit": 1}, headers=ADMIN)).json()
    assert ([e["code"] for e in dtcs["data"]], dtcs["count"]) == (["P0128"], 2)
    second = await platform.http.get(url, params={"type": "dtc", "offset": 1}, headers=ADMIN)
    assert [e["code"] for e in second.json()["data"]] == ["P0217"]


async def test_a_new_owner_sees_only_events_since_the_transfer(platform: Platform) -> None:
    await platform.vehicle(VIN_A)
    before = platform.clock.ms - 60_000
    await store_events(platform, (1, before, "dtc", "P0562"))
    ada = await platform.customer("ada@example.com")
    await platform.link(VIN_A, ada)
    platform.clock.advance(timedelta(minutes=1))
    await store_events(platform, (2, platform.clock.ms - 1000, "dtc", "P0128"))
    me = await platform.login("ada@example.com")
    mine = (await platform.http.get(f"/v1/vehicles/{VIN_A}/events", headers=me)).json()
    assert ([e["code"] for e in mine["data"]], mine["count"]) == (["P0128"], 1)
    bob = await platform.customer("bob@example.com")
    assert bob
    theirs = await platform.http.get(
        f"/v1/vehicles/{VIN_A}/events", headers=await platform.login("bob@example.com")
    )
    assert theirs.status_code == 404
