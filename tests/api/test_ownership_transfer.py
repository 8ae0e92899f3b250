"""Ownership: link, transfer, unlink; a new owner sees nothing recorded before their ownership
began, the previous owner loses the car, subscription-backed entitlements stay with the buyer
of the subscription."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from tests.api.customer_platform import ADMIN, VIN_A, Platform, running_platform

SPEED = "Vehicle.Speed"
LAT = "Vehicle.CurrentLocation.Latitude"


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


async def test_a_new_owner_sees_nothing_from_before_the_transfer(platform: Platform) -> None:
    first = await platform.customer("first@example.com")
    second = await platform.customer("second@example.com")
    await platform.vehicle(VIN_A)
    # Ten seconds into a minute, so that the transfer below (60 min 30 s later) falls at 40 s
    # into its minute and the first sample after it (5 s later) in the same minute.
    platform.clock.ms = (platform.clock.ms // 60_000 + 1) * 60_000 + 10_000
    start = platform.clock.now()
    await platform.link(VIN_A, first)
    # An hour with the first owner: speed each minute, and a position at the end.
    await platform.samples(
        VIN_A, SPEED, [(start + timedelta(minutes=m, seconds=5), 30.0 + m) for m in range(60)]
    )
    await platform.samples(VIN_A, LAT, [(start + timedelta(minutes=59), 52.52)])
    platform.clock.advance(timedelta(minutes=60, seconds=30))  # transfer mid-minute
    transfer = await platform.link(VIN_A, second)
    assert transfer["customer_id"] == second
    # Ten minutes with the second owner: speed only.
    after = platform.clock.now()
    await platform.samples(
        VIN_A, SPEED, [(after + timedelta(minutes=m, seconds=5), 100.0 + m) for m in range(10)]
    )
    platform.clock.advance(timedelta(minutes=11))
    new_owner = await platform.login("second@example.com")
    old_owner = await platform.login("first@example.com")
    http = platform.http

    # Latest state: the position taken under the first owner is not there.
    state = (await http.get(f"/v1/vehicles/{VIN_A}/state", headers=new_owner)).json()
    assert set(state["signals"]) == {SPEED}
    mine = (await http.get("/v1/me/vehicles", headers=new_owner)).json()["data"]
    assert [v["vehicle"]["vin"] for v in mine] == [VIN_A]
    assert set(mine[0]["latest_state"]) == {SPEED}
    assert mine[0]["owned_since"] == transfer["started_at"]

    # History over the whole span: raw and bucketed, only the new owner's samples.
    span = f"start={start.isoformat()}&end={platform.clock.now().isoformat()}".replace("+", "%2B")
    raw = await http.get(
        f"/v1/me/vehicles/{VIN_A}/telemetry?signals={SPEED},{LAT}&{span}", headers=new_owner
    )
    assert raw.status_code == 200, raw.text
    series = {s["signal"]: s["points"] for s in raw.json()["series"]}
    assert [p["value"] for p in series[SPEED]] == [100.0 + m for m in range(10)]
    assert series[LAT] == []
    bucketed = await http.get(
        f"/v1/me/vehicles/{VIN_A}/telemetry?signals={SPEED}&bucket=1h&{span}", headers=new_owner
    )
    # The answer starts at the first whole hour of the new ownership (here: none has ended
    # yet, so the answer is empty): no bucket straddles the transfer.
    answered_from = datetime.fromisoformat(bucketed.json()["start"])
    assert answered_from >= datetime.fromisoformat(transfer["started_at"])
    for point in bucketed.json()["series"][0]["points"]:
        assert point["min"] >= 100.0
    minutes = await http.get(
        f"/v1/me/vehicles/{VIN_A}/telemetry?signals={SPEED}&bucket=1m&{span}", headers=new_owner
    )
    # The minute of the transfer straddles both owners: left out whole, so 100.0 is not there.
    assert [p["min"] for p in minutes.json()["series"][0]["points"]] == [
        100.0 + m for m in range(1, 10)
    ]
    # A range entirely before the transfer is empty, not an error.
    before = f"start={start.isoformat()}&end={after.isoformat()}".replace("+", "%2B")
    empty = await http.get(
        f"/v1/me/vehicles/{VIN_A}/telemetry?signals={SPEED}&{before}", headers=new_owner
    )
    assert empty.status_code == 200 and empty.json()["series"] == [{"signal": SPEED, "points": []}]

    # The previous owner no longer sees the car at all.
    assert (await http.get(f"/v1/vehicles/{VIN_A}/state", headers=old_owner)).status_code == 404
    history = await http.get(
        f"/v1/me/vehicles/{VIN_A}/telemetry?signals={SPEED}", headers=old_owner
    )
    assert history.status_code == 404
    assert (await http.get("/v1/me/vehicles", headers=old_owner)).json()["data"] == []

    # Admins see every period.
    periods = (await http.get(f"/v1/vehicles/{VIN_A}/ownership", headers=ADMIN)).json()["periods"]
    assert [(p["customer_id"], p["ended_at"] is None) for p in periods] == [
        (first, False),
        (second, True),
    ]
    assert periods[0]["ended_at"] == periods[1]["started_at"]


async def test_linking_to_the_current_owner_changes_nothing(platform: Platform) -> None:
    owner = await platform.customer("owner@example.com")
    await platform.vehicle(VIN_A)
    first = await platform.link(VIN_A, owner)
    platform.clock.advance(timedelta(hours=1))
    assert await platform.link(VIN_A, owner) == first


async def test_unknown_vehicle_or_customer_and_unlinking_nothing(platform: Platform) -> None:
    owner = await platform.customer("owner@example.com")
    await platform.vehicle(VIN_A)
    http = platform.http
    unknown_vin = await http.put(
        "/v1/vehicles/1HGCM82633A004352/owner", json={"customer_id": owner}, headers=ADMIN
    )
    assert (unknown_vin.status_code, unknown_vin.json()["code"]) == (404, "vehicle_not_found")
    unknown_customer = await http.put(
        f"/v1/vehicles/{VIN_A}/owner",
        json={"customer_id": "00000000-0000-4000-8000-000000000000"},
        headers=ADMIN,
    )
    assert (unknown_customer.status_code, unknown_customer.json()["code"]) == (
        404,
        "customer_not_found",
    )
    nothing = await http.delete(f"/v1/vehicles/{VIN_A}/owner", headers=ADMIN)
    assert (nothing.status_code, nothing.json()["code"]) == (404, "vehicle_has_no_owner")


async def test_subscription_entitlements_stay_with_the_subscriber(platform: Platform) -> None:
    first = await platform.customer("first@example.com")
    second = await platform.customer("second@example.com")
    await platform.vehicle(VIN_A)
    await platform.link(VIN_A, first)
    now = platform.clock.now()
    subscription = await platform.pool.fetchval(
        "INSERT INTO subscriptions (customer_id, vin, plan, status, started_at)"
        " VALUES ($1, $2, 'heated_seats_monthly', 'active', $3) RETURNING id",
        first,
        VIN_A,
        now,
    )
    await platform.pool.executemany(
        "INSERT INTO entitlements (vin, feature, kind, subscription_id, valid_from, valid_until)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (VIN_A, "heated_seats", "subscription", subscription, now, None),
            (VIN_A, "performance_boost", "purchase", None, now, None),
            (VIN_A, "adaptive_cruise", "trial", None, now, now + timedelta(minutes=5)),
        ],
    )
    platform.clock.advance(timedelta(minutes=10))  # the trial has ended
    await platform.link(VIN_A, second)
    buyer = await platform.login("second@example.com")
    [car] = (await platform.http.get("/v1/me/vehicles", headers=buyer)).json()["data"]
    assert [e["feature"] for e in car["entitlements"]] == ["performance_boost"]
    assert car["subscriptions"] == []
