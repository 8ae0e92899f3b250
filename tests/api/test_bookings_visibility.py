"""A service centre sees a vehicle only while a booking there is relevant: from the booking's
creation until seven days after it ended, only data since the booking, and never the data of
a new owner. Another centre sees nothing (404, as for an unknown vehicle)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from api.service.visibility import CentreBookingWindows
from tests.api.customer_platform import Platform, running_platform
from tests.api.test_service_support import book, centre, centre_token, local, owner_of, pin_clock

VIN_A = "WVWZZZ1JZXW000001"
SPEED = "Vehicle.Speed"
pytestmark = pytest.mark.integration


@dataclass
class World:
    platform: Platform
    now: datetime
    a: dict[str, str]

    def centre(self, name: str) -> dict[str, str]:
        """A fresh token of centre ``name`` (client sc-<name>) at the current clock."""
        return centre_token(self.platform, f"sc-{name}", [f"centre-{name}"])

    async def state(self, headers: dict[str, str]) -> int:
        response = await self.platform.http.get(f"/v1/vehicles/{VIN_A}/state", headers=headers)
        return response.status_code

    async def advance_to(self, when: datetime) -> None:
        self.platform.clock.ms = int(when.timestamp() * 1000)


@pytest.fixture
async def world(pool: asyncpg.Pool) -> AsyncIterator[World]:
    async with running_platform(pool) as platform:
        now = pin_clock(platform)
        await centre(platform, "centre-x")
        await centre(platform, "centre-y")
        await platform.client("sc-x", "service_center", ["centre-x"])
        await platform.client("sc-y", "service_center", ["centre-y"])
        _, a = await owner_of(platform, "a@example.com", VIN_A)
        yield World(platform, now, a)


async def test_the_booked_centre_sees_the_car_and_the_other_does_not(world: World) -> None:
    assert await world.state(world.centre("x")) == 404  # no booking yet
    await book(world.platform, world.a, VIN_A, local(world.now + timedelta(days=1), 10))
    assert await world.state(world.centre("x")) == 200
    assert await world.state(world.centre("y")) == 404
    listed = await world.platform.http.get("/v1/vehicles", headers=world.centre("x"))
    assert [v["vin"] for v in listed.json()["data"]] == [VIN_A]
    listed = await world.platform.http.get("/v1/vehicles", headers=world.centre("y"))
    assert listed.json()["data"] == []


async def test_the_centre_sees_only_data_since_the_booking(world: World) -> None:
    platform = world.platform
    before = world.now + timedelta(minutes=1)
    await platform.samples(VIN_A, SPEED, [(before, 30.0)])
    await world.advance_to(world.now + timedelta(minutes=10))
    await book(platform, world.a, VIN_A, local(world.now + timedelta(days=1), 10))
    after = world.now + timedelta(minutes=20)
    response = await platform.http.get(f"/v1/vehicles/{VIN_A}/state", headers=world.centre("x"))
    assert response.json()["signals"] == {}  # the 30 km/h predate the booking
    await platform.samples(VIN_A, SPEED, [(after, 50.0)])
    response = await platform.http.get(f"/v1/vehicles/{VIN_A}/state", headers=world.centre("x"))
    assert response.json()["signals"][SPEED]["value"] == 50.0


async def test_relevant_until_seven_days_after_the_visit(world: World) -> None:
    platform = world.platform
    slot = local(world.now + timedelta(days=1), 10)
    bid = (await book(platform, world.a, VIN_A, slot))["id"]
    await platform.http.post(f"/v1/me/bookings/{bid}/confirm", headers=world.a)
    await platform.http.post(f"/v1/service/bookings/{bid}/check-in", headers=world.centre("x"))
    await world.advance_to(slot + timedelta(hours=1))
    done = await platform.http.post(
        f"/v1/service/bookings/{bid}/complete", headers=world.centre("x")
    )
    assert done.status_code == 200, done.text
    await world.advance_to(slot + timedelta(hours=1, days=7) - timedelta(minutes=1))
    assert await world.state(world.centre("x")) == 200
    await world.advance_to(slot + timedelta(hours=1, days=7))
    assert await world.state(world.centre("x")) == 404
    # The booking record itself stays the centre's.
    kept = await platform.http.get(f"/v1/service/bookings/{bid}", headers=world.centre("x"))
    assert kept.status_code == 200


async def test_a_cancelled_booking_is_relevant_for_seven_days_too(world: World) -> None:
    platform = world.platform
    bid = (await book(platform, world.a, VIN_A, local(world.now + timedelta(days=3), 10)))["id"]
    await platform.http.post(f"/v1/me/bookings/{bid}/cancel", headers=world.a)
    await world.advance_to(world.now + timedelta(days=6))
    assert await world.state(world.centre("x")) == 200
    await world.advance_to(world.now + timedelta(days=7, seconds=1))
    assert await world.state(world.centre("x")) == 404


async def test_a_new_owner_is_not_seen_through_the_previous_owners_booking(world: World) -> None:
    platform = world.platform
    await book(platform, world.a, VIN_A, local(world.now + timedelta(days=1), 10))
    assert await world.state(world.centre("x")) == 200
    new_owner = await platform.customer("new@example.com")
    await platform.link(VIN_A, new_owner)
    assert await world.state(world.centre("x")) == 404


async def test_the_windows_merge_several_bookings_of_one_car(
    world: World, pool: asyncpg.Pool
) -> None:
    platform = world.platform
    first = await book(platform, world.a, VIN_A, local(world.now + timedelta(days=1), 10))
    await world.advance_to(world.now + timedelta(minutes=10))
    await book(platform, world.a, VIN_A, local(world.now + timedelta(days=2), 10))
    async with pool.acquire() as conn:
        windows = await CentreBookingWindows().windows(
            conn, frozenset({"centre-x"}), world.now + timedelta(hours=2)
        )
    assert len(windows) == 1
    (window,) = windows
    assert window.vin == VIN_A and window.until is None
    assert window.since == datetime.fromisoformat(first["requested_at"]).astimezone(UTC)
