"""Consent per purpose: history kept, withdrawal, append-only records, the location-consent
view and notification channel that ingest reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from tests.api.customer_platform import ADMIN, VIN_A, Platform, running_platform

PURPOSES = ["location", "diagnostics_sharing", "marketing", "ota_auto_install"]


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


async def put(platform: Platform, headers: dict[str, str], source: str, **purposes: bool) -> dict:  # type: ignore[type-arg]
    response = await platform.http.put(
        "/v1/me/consents", json={"source": source, "purposes": purposes}, headers=headers
    )
    assert response.status_code == 200, response.text
    result: dict = response.json()  # type: ignore[type-arg]
    return result


async def test_undecided_purposes_are_not_granted(platform: Platform) -> None:
    await platform.customer("ada@example.com")
    me = await platform.login("ada@example.com")
    consents = (await platform.http.get("/v1/me/consents", headers=me)).json()
    assert [c["purpose"] for c in consents["current"]] == PURPOSES
    assert all(c["granted"] is False and c["source"] is None for c in consents["current"])
    assert consents["history"] == [] and consents["history_count"] == 0


async def test_grants_and_withdrawals_are_all_kept_with_time_and_source(
    platform: Platform,
) -> None:
    await platform.customer("ada@example.com")
    me = await platform.login("ada@example.com")
    t0 = platform.clock.now()
    await put(platform, me, "app", location=True, marketing=True)
    platform.clock.advance(timedelta(minutes=5))
    await put(platform, me, "in_car", location=True)  # no change: nothing recorded
    platform.clock.advance(timedelta(minutes=5))
    result = await put(platform, me, "web", marketing=False)

    current = {c["purpose"]: c for c in result["current"]}
    assert current["location"]["granted"] is True and current["location"]["source"] == "app"
    assert current["marketing"]["granted"] is False and current["marketing"]["source"] == "web"
    assert current["ota_auto_install"]["source"] is None
    history = [(h["purpose"], h["granted"], h["source"]) for h in result["history"]]
    assert history == [
        ("marketing", False, "web"),
        ("location", True, "app"),
        ("marketing", True, "app"),
    ] or history == [
        ("marketing", False, "web"),
        ("marketing", True, "app"),
        ("location", True, "app"),
    ]
    times = sorted({h["recorded_at"] for h in result["history"]})
    assert len(times) == 2 and times[0].startswith(t0.isoformat()[:16])
    paged = (await platform.http.get("/v1/me/consents?limit=1&offset=2", headers=me)).json()
    assert paged["history_count"] == 3 and len(paged["history"]) == 1


async def test_consent_records_cannot_be_edited_or_deleted(platform: Platform) -> None:
    await platform.customer("ada@example.com")
    me = await platform.login("ada@example.com")
    await put(platform, me, "app", marketing=True)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await platform.pool.execute("UPDATE consent_records SET granted = false")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await platform.pool.execute("DELETE FROM consent_records")
    assert await platform.pool.fetchval("SELECT count(*) FROM consent_records") == 1


async def test_bad_consent_bodies_are_422(platform: Platform) -> None:
    await platform.customer("ada@example.com")
    me = await platform.login("ada@example.com")
    for body in (
        {"source": "app", "purposes": {"telepathy": True}},
        {"source": "fax", "purposes": {"location": True}},
        {"source": "app", "purposes": {}},
        {"purposes": {"location": True}},
    ):
        response = await platform.http.put("/v1/me/consents", json=body, headers=me)
        assert response.status_code == 422, body


async def test_location_consent_is_readable_per_vin_and_announced(
    platform: Platform, database_url: str
) -> None:
    ada = await platform.customer("ada@example.com")
    await platform.vehicle(VIN_A)
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    await listener.add_listener("vehicle_location_consent", lambda *a: heard.put_nowait(a[3]))

    async def granted() -> tuple[bool, bool]:
        row = await platform.pool.fetchrow(
            "SELECT owned, granted FROM vehicle_location_consent WHERE vin = $1", VIN_A
        )
        assert row is not None
        return row["owned"], row["granted"]

    async def next_vin() -> str:
        return await asyncio.wait_for(heard.get(), timeout=5)

    try:
        # An unlinked car: the OEM's own, no data subject.
        assert await granted() == (False, True)
        await platform.link(VIN_A, ada)
        assert await next_vin() == VIN_A
        assert await granted() == (True, False)  # linked, no decision yet: no positions
        me = await platform.login("ada@example.com")
        await put(platform, me, "app", location=True)
        assert await next_vin() == VIN_A
        assert await granted() == (True, True)
        await put(platform, me, "in_car", location=False)
        assert await next_vin() == VIN_A
        assert await granted() == (True, False)
        await put(platform, me, "app", marketing=True)  # another purpose: no notification
        await platform.http.delete(f"/v1/vehicles/{VIN_A}/owner", headers=ADMIN)
        assert await next_vin() == VIN_A
        assert heard.empty()
    finally:
        await listener.close()
