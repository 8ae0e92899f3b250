"""GDPR: the export holds everything FleetLink keeps about the customer; erasure leaves no
personal data of theirs in any table.

The erasure test does not trust a list of tables: it asks ``information_schema`` for every
column named ``customer_id`` and every column that can hold text (text, varchar, char, arrays,
json, jsonb, uuid, bytea), and searches all of them for the customer's id and their distinctive
strings (e-mail, names, phone, address). The same search before erasure must find them in the
places we put them, so it cannot pass by looking in the wrong places.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from api.customers.gdpr import identifiers, redact
from api.notifications.notifier import notifier
from diagnostics.alert_store import AlertStore
from diagnostics.findings import AlertType, Finding, Severity
from diagnostics.lifecycle import Source
from tests.api.customer_platform import ADMIN, VIN_A, VIN_B, Platform, running_platform
from tests.api.test_service_support import alert, book, centre, local, pin_clock, van

GIVEN, FAMILY, EMAIL, PHONE, STREET, CITY, POSTCODE = (
    "Zelda",
    "Quuxley",
    "zelda.q@example.org",
    "+4917000000042",
    "Geheimweg 7",
    "Obscuria",
    "QZ-4711",
)
MARKERS = (GIVEN, FAMILY, EMAIL, PHONE, STREET, CITY, POSTCODE)
# Where the van was to come: her home, personal data without a single string marker.
HOME = {"lat": 48.1401, "lon": 11.5602}

# Columns that can hold a string (bytea: payloads kept as received), searched for the markers
# and the customer's id.
TEXT_TYPES = ("text", "character varying", "character", "ARRAY", "json", "jsonb", "uuid", "bytea")


@dataclass
class Customer:
    id: str
    headers: dict[str, str]
    bookings: dict[str, dict[str, Any]]
    work_order_id: int


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


@pytest.fixture
async def zelda(platform: Platform) -> Customer:
    """A customer with data in every table that can hold some: profile; consents with
    history; two ownership periods (one closed); a subscription and an entitlement; alerts of
    both cars (one from before she owned VIN_A); bookings with notes (one mobile, to her home;
    one checked in with a work order naming her); notifications of all that; and events in
    the outbox, some not yet consumed."""
    now = pin_clock(platform)
    before = now - timedelta(hours=1)
    await platform.vehicle(VIN_A)
    await platform.vehicle(VIN_B)
    # Raised from data of before her time: not hers, not exported.
    await _alert(platform.pool, VIN_A, AlertType.SERVICE_DUE, observed=before, now=before)
    customer_id = await platform.customer(
        EMAIL,
        given_name=GIVEN,
        family_name=FAMILY,
        phone=PHONE,
        address_line=STREET,
        postal_code=POSTCODE,
        city=CITY,
        preferred_channels=["app", "email", "sms"],
    )
    headers = await platform.login(EMAIL)
    for vin in (VIN_A, VIN_B):
        await platform.link(vin, customer_id)
    for purposes in ({"location": True, "marketing": True}, {"marketing": False}):
        platform.clock.advance(timedelta(minutes=1))
        response = await platform.http.put(
            "/v1/me/consents", json={"source": "app", "purposes": purposes}, headers=headers
        )
        assert response.status_code == 200
    now = platform.clock.now()
    # Raised while she owned VIN_B, which she then sold: exported all the same.
    await _alert(platform.pool, VIN_B, AlertType.TIRE_SLOW_LEAK, observed=now, now=now)
    platform.clock.advance(timedelta(minutes=1))
    unlinked = await platform.http.delete(f"/v1/vehicles/{VIN_B}/owner", headers=ADMIN)
    assert unlinked.status_code == 200, unlinked.text
    platform.clock.advance(timedelta(minutes=10))
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

    await centre(platform, "centre-x")
    await van(platform, "van-x", "centre-x")
    brakes = await alert(platform.pool, VIN_A, now=now)
    tomorrow = now + timedelta(days=1)
    bookings = {
        "mobile": await book(
            platform,
            headers,
            VIN_A,
            local(tomorrow, 8),
            centre_id=None,
            van_id="van-x",
            location=HOME,
            notes=f"Ring at {STREET}, {POSTCODE} {CITY}",
        ),
        "workshop": await book(
            platform,
            headers,
            VIN_A,
            local(tomorrow, 15),
            alert_id=brakes,
            notes=f"Call {GIVEN} on {PHONE} or write to {EMAIL}",
        ),
    }
    workshop = bookings["workshop"]["id"]
    assert (
        await platform.http.post(f"/v1/me/bookings/{workshop}/confirm", headers=headers)
    ).status_code == 200
    assert (
        await platform.http.post(f"/v1/service/bookings/{workshop}/check-in", headers=ADMIN)
    ).status_code == 200
    opened = await platform.http.post(
        f"/v1/service/bookings/{workshop}/work-order",
        json={"complaint": f"Ms {FAMILY} ({PHONE}) hears grinding from the front left"},
        headers=ADMIN,
    )
    assert opened.status_code == 201, opened.text
    work_order_id = opened.json()["id"]
    line = {
        "kind": "labour",
        "code": "L-1",
        "description": f"Test drive with {GIVEN} {FAMILY}",
        "quantity": "0.5",
        "unit_price_cents": 9000,
    }
    added = await platform.http.post(
        f"/v1/service/work-orders/{work_order_id}/lines", json=line, headers=ADMIN
    )
    assert added.status_code == 201, added.text
    # The notifier tells her about all that; the events after it wait in the outbox.
    assert await notifier(platform.pool, platform.clock).process_pending() > 0
    late = await book(platform, headers, VIN_A, local(tomorrow, 17), notes=f"{GIVEN} again")
    bookings["late"] = late
    return Customer(customer_id, headers, bookings, work_order_id)


async def _alert(
    pool: asyncpg.Pool, vin: str, type_: AlertType, *, observed: datetime, now: datetime
) -> int:
    finding = Finding(vin, type_, "", Severity.INFO, observed, "Have a look.")
    changes = await AlertStore(pool).apply(Source.STREAM, [finding], now=now)
    return changes.opened[0].id


async def customer_id_columns(pool: asyncpg.Pool) -> list[str]:
    """Every base table with a ``customer_id`` column."""
    rows = await pool.fetch(
        "SELECT c.table_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
        " AND c.column_name = 'customer_id' ORDER BY 1"
    )
    return [r["table_name"] for r in rows]


async def personal_data(pool: asyncpg.Pool, customer_id: str) -> dict[tuple[str, str], int]:
    """(table, column) -> rows that hold the customer's id or one of their strings, over every
    column of every table that could hold them."""
    columns = await pool.fetch(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
        " AND (c.column_name = 'customer_id' OR c.data_type = ANY($1::text[])) ORDER BY 1, 2",
        [*TEXT_TYPES],
    )
    assert len({c["table_name"] for c in columns}) > 20  # the whole schema, not a few tables
    needles = [m.lower() for m in (*MARKERS, customer_id)]
    found: dict[tuple[str, str], int] = {}
    for table, column, data_type in (tuple(c) for c in columns):
        # Bytes as text with non-ASCII bytes escaped: an ASCII marker shows as itself.
        text = f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
        match = f"strpos(lower({text}), m) > 0"
        count = await pool.fetchval(
            f'SELECT count(*) FROM "{table}" WHERE EXISTS'
            f" (SELECT 1 FROM unnest($1::text[]) AS m WHERE {match})",
            needles,
        )
        if count:
            found[(table, column)] = count
    return found


async def test_the_export_holds_every_row_about_the_customer(
    platform: Platform, zelda: Customer
) -> None:
    response = await platform.http.get("/v1/me/export?download=true", headers=zelda.headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    export = response.json()
    profile = export["customer"]
    assert [profile[k] for k in ("given_name", "family_name", "email", "phone")] == [
        GIVEN,
        FAMILY,
        EMAIL,
        PHONE,
    ]
    # Every table that refers to a customer is in the export, row for row. A new table with a
    # customer_id column fails here until the export includes it. The outbox is plumbing: its
    # events are the bookings' and work orders' public JSON, exported as bookings.
    exported = {
        "consent_records": len(export["consent_history"]),
        "customer_consents": sum(c["source"] is not None for c in export["consents"]),
        "vehicle_ownership": len(export["ownership"]),
        "subscriptions": len(export["subscriptions"]),
        "bookings": len(export["bookings"]),
        "notifications": len(export["notifications"]),
        "offers": len(export["offers"]),
        "offer_decisions": len(export["offer_decisions"]),
    }
    for table in await customer_id_columns(platform.pool):
        if table == "outbox":
            continue
        count = await platform.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE customer_id = $1", zelda.id
        )
        assert exported.get(table) == count, table
    assert exported.pop("notifications") >= 3
    assert exported == {
        "consent_records": 3,
        "customer_consents": 2,
        "vehicle_ownership": 2,
        "subscriptions": 1,
        "bookings": 3,
        "offers": 0,
        "offer_decisions": 0,
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
    # Alerts of her cars while she owned them, newest first: the sold car's included, the one
    # raised from data of before her time not.
    assert [(a["vin"], a["type"]) for a in export["alerts"]] == [
        (VIN_A, "brake_pad_wear"),
        (VIN_B, "tire_slow_leak"),
    ]
    assert export["alerts"][0]["recommended_action"] == "Have it checked"
    # Bookings in full: her notes and where the van was to come are hers.
    bookings = {b["id"]: b for b in export["bookings"]}
    assert set(bookings) == {b["id"] for b in zelda.bookings.values()}
    mobile = bookings[zelda.bookings["mobile"]["id"]]
    assert (mobile["location"], mobile["notes"]) == (HOME, f"Ring at {STREET}, {POSTCODE} {CITY}")
    workshop = bookings[zelda.bookings["workshop"]["id"]]
    assert (workshop["status"], workshop["work_order_id"]) == ("checked_in", zelda.work_order_id)
    # Every notification, with its deliveries, matching her inbox.
    inbox = await platform.http.get("/v1/me/notifications?limit=100", headers=zelda.headers)
    assert export["notifications"] == inbox.json()["data"]
    topics = {n["topic"] for n in export["notifications"]}
    assert {"alert.opened", "booking.confirmed", "booking.checked_in"} <= topics
    assert all(n["deliveries"] for n in export["notifications"])
    assert export["offers"] == []


async def test_erasure_leaves_no_personal_data_in_any_table(
    platform: Platform, zelda: Customer
) -> None:
    # The search finds her where she is, so finding nothing afterwards means something.
    before = await personal_data(platform.pool, zelda.id)
    assert {
        ("customers", "email"),
        ("customers", "given_name"),
        ("customers", "phone"),
        ("customers", "address_line"),
        ("customers", "postal_code"),
        ("customers", "city"),
        ("bookings", "customer_id"),
        ("bookings", "notes"),
        ("work_orders", "complaint"),
        ("work_order_lines", "description"),
        ("notifications", "customer_id"),
        ("outbox", "customer_id"),
        ("outbox", "payload"),
        ("consent_records", "customer_id"),
        ("customer_consents", "customer_id"),
        ("vehicle_ownership", "customer_id"),
        ("subscriptions", "customer_id"),
    } <= set(before), before
    pending = await platform.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE customer_id = $1 AND id > (SELECT id FROM"
        " outbox_cursors WHERE consumer = 'notifier')",
        zelda.id,
    )
    assert pending > 0  # events for her that no consumer has read yet

    response = await platform.http.delete("/v1/me", headers=zelda.headers)
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["vehicles_unlinked"] == [VIN_A]
    assert receipt["consent_records_anonymised"] == 3
    assert receipt["bookings_anonymised"] == 3

    # Every customer_id column is free of her, and no string column holds her id or strings.
    for table in await customer_id_columns(platform.pool):
        count = await platform.pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE customer_id = $1", zelda.id
        )
        assert count == 0, table
    assert await personal_data(platform.pool, zelda.id) == {}

    # What the law keeps: consent records, anonymised.
    kept = await platform.pool.fetch("SELECT customer_id, purpose FROM consent_records")
    assert len(kept) == 3 and all(r["customer_id"] is None for r in kept)
    # Bookings stay as the centre's record of the car, without her: notes and the van's
    # destination gone, the visits not begun cancelled, the car in the workshop still there.
    bookings = await platform.pool.fetch(
        "SELECT id, customer_id, status, notes, service_lat, service_lon FROM bookings ORDER BY id"
    )
    assert [tuple(b)[1:] for b in bookings] == [
        (None, "cancelled", None, None, None),
        (None, "checked_in", None, None, None),
        (None, "cancelled", None, None, None),
    ]
    # Its work order keeps the repair, with her name and number struck out.
    order = await platform.pool.fetchrow(
        "SELECT complaint, status FROM work_orders WHERE id = $1", zelda.work_order_id
    )
    assert tuple(order) == ("Ms [erased] ([erased]) hears grinding from the front left", "open")
    line = await platform.pool.fetchval("SELECT description FROM work_order_lines")
    assert line == "Test drive with [erased]"
    # Her notifications went with her, and their deliveries with them.
    assert await platform.pool.fetchval("SELECT count(*) FROM notifications") == 0
    assert await platform.pool.fetchval("SELECT count(*) FROM notification_deliveries") == 0
    # The outbox keeps the events of the cars (alerts), none about her.
    topics = await platform.pool.fetch("SELECT DISTINCT topic FROM outbox ORDER BY 1")
    assert [t["topic"] for t in topics] == ["alert.opened"]
    # A consumer catching up afterwards finds nothing of hers to act on.
    assert await notifier(platform.pool, platform.clock).process_pending() == 0
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
    assert (await platform.http.get("/v1/me", headers=zelda.headers)).status_code == 401
    login = await platform.http.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": EMAIL, "password": "x" * 12},
    )
    assert login.status_code == 400


def test_redaction_strikes_whole_words_only_ignoring_case() -> None:
    strings = identifiers(["ada@example.com", "Ada Field", "Ada", "Field", None, " ", "X"])
    assert strings == ["ada@example.com", "Ada Field", "Field", "Ada"]
    text = "ADA FIELD (ada@example.com) did the fieldwork; Field's car, Adam's too"
    assert redact(text, strings) == (
        "[erased] ([erased]) did the fieldwork; [erased]'s car, Adam's too"
    )
