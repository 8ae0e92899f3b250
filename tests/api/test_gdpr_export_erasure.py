"""GDPR: the export holds everything FleetLink keeps about the customer; erasure leaves no
personal data in any table (every table is read back, not only the ones we expect)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import pytest

from tests.api.customer_platform import ADMIN, VIN_A, VIN_B, Platform, running_platform

MARKERS = ("Zelda", "Quuxley", "zelda.q@example.org", "+4917000000042", "Geheimweg 7", "Obscuria")


@dataclass
class Customer:
    id: str
    headers: dict[str, str]


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


@pytest.fixture
async def zelda(platform: Platform) -> Customer:
    """A customer with data in every customer table: consents (history), two ownership periods
    (one closed), a subscription and an entitlement."""
    customer_id = await platform.customer(
        MARKERS[2],
        given_name=MARKERS[0],
        family_name=MARKERS[1],
        phone=MARKERS[3],
        address_line=MARKERS[4],
        city=MARKERS[5],
    )
    headers = await platform.login(MARKERS[2])
    for vin in (VIN_A, VIN_B):
        await platform.vehicle(vin)
        await platform.link(vin, customer_id)
    await platform.http.delete(f"/v1/vehicles/{VIN_B}/owner", headers=ADMIN)
    for purposes in ({"location": True, "marketing": True}, {"marketing": False}):
        platform.clock.advance(timedelta(minutes=1))
        response = await platform.http.put(
            "/v1/me/consents", json={"source": "app", "purposes": purposes}, headers=headers
        )
        assert response.status_code == 200
    now = platform.clock.now()
    subscription = await platform.pool.fetchval(
        "INSERT INTO subscriptions (customer_id, vin, plan, status, started_at)"
        " VALUES ($1, $2, 'connect_plus', 'active', $3) RETURNING id",
        customer_id,
        VIN_A,
        now - timedelta(days=1),
    )
    await platform.pool.execute(
        "INSERT INTO entitlements (vin, feature, kind, subscription_id, valid_from)"
        " VALUES ($1, 'heated_seats', 'subscription', $2, $3)",
        VIN_A,
        subscription,
        now - timedelta(days=1),
    )
    await platform.samples(VIN_A, "Vehicle.Speed", [(now, 42.0)])
    return Customer(customer_id, headers)


async def customer_tables(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "SELECT table_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND column_name = 'customer_id'"
        " AND table_name IN (SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE') ORDER BY 1"
    )
    return [r["table_name"] for r in rows]


async def test_the_export_holds_every_row_about_the_customer(
    platform: Platform, zelda: Customer
) -> None:
    response = await platform.http.get("/v1/me/export?download=true", headers=zelda.headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    export = response.json()
    profile = export["customer"]
    assert [profile[k] for k in ("given_name", "family_name", "email", "phone")] == list(
        MARKERS[:4]
    )
    # Every table that refers to a customer is in the export, row for row. A new table with a
    # customer_id column fails here until the export includes it.
    exported = {
        "consent_records": len(export["consent_history"]),
        "customer_consents": sum(c["source"] is not None for c in export["consents"]),
        "vehicle_ownership": len(export["ownership"]),
        "subscriptions": len(export["subscriptions"]),
    }
    for table in await customer_tables(platform.pool):
        count = await platform.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE customer_id = $1", zelda.id
        )
        assert exported.get(table) == count, table
    assert exported == {
        "consent_records": 3,
        "customer_consents": 2,
        "vehicle_ownership": 2,
        "subscriptions": 1,
    }
    [vehicle] = export["vehicles"]
    assert vehicle["vehicle"]["vin"] == VIN_A
    assert vehicle["latest_state"]["Vehicle.Speed"]["value"] == 42.0
    assert [e["feature"] for e in vehicle["entitlements"]] == ["heated_seats"]
    assert export["telemetry"] == [
        {
            "vin": VIN_A,
            "start": vehicle["owned_since"],
            "end": None,
            "href": f"/v1/me/vehicles/{VIN_A}/telemetry",
        }
    ]
    assert export["events"] == [
        {
            "vin": VIN_A,
            "start": vehicle["owned_since"],
            "end": None,
            "href": f"/v1/vehicles/{VIN_A}/events",
        }
    ]
    for later in ("alerts", "bookings", "offers", "notifications"):
        assert export[later] == []


async def test_erasure_leaves_no_personal_data_in_any_table(
    platform: Platform, zelda: Customer
) -> None:
    response = await platform.http.delete("/v1/me", headers=zelda.headers)
    assert response.status_code == 200
    receipt = response.json()
    assert receipt["vehicles_unlinked"] == [VIN_A]
    assert receipt["consent_records_anonymised"] == 3

    tables = await platform.pool.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    assert len(tables) > 5
    for table in (t["table_name"] for t in tables):
        rows = await platform.pool.fetch(f"SELECT * FROM {table}")
        dump = repr([dict(r) for r in rows])
        for marker in (*MARKERS, zelda.id):
            assert marker not in dump, (table, marker)
    # What the law keeps: consent records, anonymised.
    kept = await platform.pool.fetch("SELECT customer_id, purpose FROM consent_records")
    assert len(kept) == 3 and all(r["customer_id"] is None for r in kept)
    # The vehicles stay registered (the OEM's), owned by nobody, with their telemetry.
    listing = (await platform.http.get("/v1/vehicles", headers=ADMIN)).json()
    assert {v["vin"] for v in listing["data"]} == {VIN_A, VIN_B}
    assert await platform.pool.fetchval("SELECT count(*) FROM vehicle_ownership") == 0
    # The feature their subscription paid for ends with it; the car does not keep it for free.
    entitlements = await platform.pool.fetch("SELECT revoked_at FROM entitlements")
    assert [e["revoked_at"] for e in entitlements] == [platform.clock.now()]
    # The erased owner most likely still drives the cars: their positions are not stored now.
    consent = await platform.pool.fetch(
        "SELECT vin, owned, granted FROM vehicle_location_consent ORDER BY vin"
    )
    assert [tuple(r) for r in consent] == [(VIN_A, False, False), (VIN_B, False, False)]
    # The customer is gone for everyone.
    gone = await platform.http.get(f"/v1/customers/{zelda.id}", headers=ADMIN)
    assert (gone.status_code, gone.json()["code"]) == (404, "customer_not_found")
    login = await platform.http.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": MARKERS[2], "password": "x" * 12},
    )
    assert login.status_code == 400
