"""Work orders: opened for a checked-in car with the recall and warranty checks, parts and
labour lines with totals and coverage rules, and closing, which resolves the alerts it names,
records the recall remedies done, completes the booking and writes the outbox events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.api.customer_platform import ADMIN, Platform, running_platform
from tests.api.test_service_support import alert, book, centre, local, outbox, owner_of, pin_clock

VIN_A = "WVWZZZE1ZMZ000042"  # serial 000042
VIN_B = "WVWZZZE1ZMZ000043"
pytestmark = pytest.mark.integration


@dataclass
class Garage:
    platform: Platform
    pool: asyncpg.Pool
    now: datetime
    a: dict[str, str]
    b: dict[str, str]
    centre_x: dict[str, str]
    centre_y: dict[str, str]
    booking_id: int
    alert_id: int

    async def call(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, Any]:
        response = await self.platform.http.request(method, path, headers=headers, json=body)
        return response.status_code, response.json() if response.content else None

    async def open(self, body: dict[str, Any] | None = None, booking_id: int | None = None) -> Any:
        status, work_order = await self.call(
            "POST",
            f"/v1/service/bookings/{booking_id or self.booking_id}/work-order",
            self.centre_x,
            {"complaint": "Grinding noise when braking", **(body or {})},
        )
        assert status == 201, work_order
        return work_order


RECALLS = [
    # Affects VIN_A: Volkswagen ID.3 2021, serial 000042.
    ("VW-24-ID3-HV", "ID.3", 2020, 2022, "000000", "000500"),
    # Other serials, another model, other years: none affects it.
    ("VW-24-ID3-LATE", "ID.3", 2020, 2022, "500000", "999999"),
    ("VW-24-GOLF", "Golf", 2020, 2022, None, None),
    ("VW-19-ID3", "ID.3", 2018, 2019, None, None),
]


async def _catalogue(platform: Platform) -> None:
    for code, model, year_from, year_to, serial_from, serial_to in RECALLS:
        body = {
            "code": code,
            "title": f"Campaign {code}",
            "brand": "Volkswagen",
            "model": model,
            "model_year_from": year_from,
            "model_year_to": year_to,
            "serial_from": serial_from,
            "serial_to": serial_to,
            "remedy": "Fix it",
        }
        response = await platform.http.post("/v1/service/recalls", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
    response = await platform.http.put(
        "/v1/service/warranty-terms/Volkswagen", json={"years": 2, "km": 100000}, headers=ADMIN
    )
    assert response.status_code == 200


@pytest.fixture
async def garage(pool: asyncpg.Pool) -> AsyncIterator[Garage]:
    async with running_platform(pool) as platform:
        now = pin_clock(platform)
        await centre(platform, "centre-x")
        await centre(platform, "centre-y")
        await _catalogue(platform)
        _, a = await owner_of(platform, "a@example.com", VIN_A, model="ID.3", year=2021)
        _, b = await owner_of(platform, "b@example.com", VIN_B, model="ID.3", year=2021)
        await platform.samples(VIN_A, "Vehicle.TraveledDistance", [(now, 42_000.0)])
        alert_id = await alert(pool, VIN_A, now=now)
        booking = await book(
            platform, a, VIN_A, local(now + timedelta(days=1), 10), alert_id=alert_id
        )
        centre_x = await platform.client("sc-x", "service_center", ["centre-x"])
        garage = Garage(
            platform,
            pool,
            now,
            a,
            b,
            centre_x,
            await platform.client("sc-y", "service_center", ["centre-y"]),
            booking["id"],
            alert_id,
        )
        await garage.call("POST", f"/v1/me/bookings/{booking['id']}/confirm", a)
        status, _ = await garage.call(
            "POST", f"/v1/service/bookings/{booking['id']}/check-in", centre_x
        )
        assert status == 200
        yield garage


async def test_opening_runs_the_recall_and_warranty_checks(garage: Garage) -> None:
    registered = (garage.now - timedelta(days=400)).date()
    work_order = await garage.open({"first_registered_on": registered.isoformat()})
    assert work_order["status"] == "open"
    assert [r["code"] for r in work_order["recalls"]] == ["VW-24-ID3-HV"]
    assert work_order["warranty"] == {
        "status": "covered",
        "covered": True,
        "starts_on": registered.isoformat(),
        "start_basis": "first_registration",
        "expires_on": registered.replace(year=registered.year + 2).isoformat(),
        "km_limit": 100000,
        "odometer_km": 42000.0,
        "odometer_basis": "telemetry",
    }
    assert work_order["alert_ids"] == [garage.alert_id]  # the booking's alert by default
    booking = (await garage.call("GET", f"/v1/service/bookings/{garage.booking_id}", ADMIN))[1]
    assert booking["work_order_id"] == work_order["id"]


async def test_the_workshops_odometer_reading_can_end_the_warranty(garage: Garage) -> None:
    registered = (garage.now - timedelta(days=30)).date().isoformat()
    work_order = await garage.open({"odometer_km": 100_000.5, "first_registered_on": registered})
    assert work_order["warranty"]["status"] == "expired_mileage"
    assert work_order["warranty"]["odometer_basis"] == "workshop"
    line = {
        "kind": "part",
        "code": "1EA698151",
        "description": "Brake pads",
        "quantity": "1",
        "unit_price_cents": 9100,
        "coverage": "warranty",
    }
    status, body = await garage.call(
        "POST", f"/v1/service/work-orders/{work_order['id']}/lines", garage.centre_x, line
    )
    assert (status, body["code"]) == (409, "coverage_not_applicable")


async def test_lines_totals_and_coverage(garage: Garage) -> None:
    work_order = await garage.open()
    path = f"/v1/service/work-orders/{work_order['id']}/lines"

    async def add(expect: int = 201, **line: Any) -> Any:
        status, body = await garage.call("POST", path, garage.centre_x, line)
        assert status == expect, body
        return body

    await add(
        kind="part", code="PADS", description="Brake pads", quantity="2", unit_price_cents=4550
    )
    await add(
        kind="labour",
        code="BRK01",
        description="Replace pads",
        quantity="1.5",
        unit_price_cents=12_001,
    )
    await add(
        kind="labour",
        code="HV01",
        description="Retighten HV connectors",
        quantity="0.75",
        unit_price_cents=12_000,
        coverage="recall",
        recall_code="VW-24-ID3-HV",
    )
    refused = await add(
        409,
        kind="labour",
        code="X",
        description="Not this car's recall",
        quantity="1",
        unit_price_cents=1,
        coverage="recall",
        recall_code="VW-24-GOLF",
    )
    assert refused["code"] == "coverage_not_applicable"
    await add(
        422,
        kind="part",
        code="X",
        description="No code",
        quantity="1",
        unit_price_cents=1,
        coverage="recall",
    )
    body = await add(
        kind="part",
        code="DISC",
        description="Disc",
        quantity="1",
        unit_price_cents=20_000,
        coverage="goodwill",
    )
    # 2 x 45.50 = 91.00; 1.5 h x 120.01 = 180.015 -> 180.02; 0.75 h x 120.00 = 90.00; 200.00.
    assert body["totals"] == {
        "currency": "EUR",
        "parts_cents": 9100 + 20_000,
        "labour_cents": 18_002 + 9000,
        "total_cents": 56_102,
        "covered_cents": 9000 + 20_000,
        "customer_cents": 9100 + 18_002,
    }
    assert [p["code"] for p in body["parts"]] == ["PADS", "DISC"]
    assert [(lab["code"], lab["amount_cents"]) for lab in body["labour"]] == [
        ("BRK01", 18_002),
        ("HV01", 9000),
    ]
    disc = body["parts"][1]["id"]
    status, after = await garage.call("DELETE", f"{path}/{disc}", garage.centre_x)
    assert (status, after["totals"]["covered_cents"], after["totals"]["total_cents"]) == (
        200,
        9000,
        36_102,
    )
    status, missing = await garage.call("DELETE", f"{path}/{disc}", garage.centre_x)
    assert (status, missing["code"]) == (404, "work_order_line_not_found")


async def test_closing_resolves_the_alert_completes_the_booking_and_tells_everyone(
    garage: Garage,
) -> None:
    work_order = await garage.open()
    wid = work_order["id"]
    await garage.call(
        "POST",
        f"/v1/service/work-orders/{wid}/lines",
        garage.centre_x,
        {
            "kind": "labour",
            "code": "HV01",
            "description": "Recall",
            "quantity": "1",
            "unit_price_cents": 100,
            "coverage": "recall",
            "recall_code": "VW-24-ID3-HV",
        },
    )
    garage.platform.clock.advance(timedelta(minutes=5))
    closed_at = garage.platform.clock.now()
    status, closed = await garage.call(
        "POST", f"/v1/service/work-orders/{wid}/close", garage.centre_x
    )
    assert status == 200, closed
    assert (closed["status"], closed["resolved_alert_ids"]) == ("closed", [garage.alert_id])
    row = await garage.pool.fetchrow(
        "SELECT status, resolution, work_order_id, resolved_at FROM alerts WHERE id = $1",
        garage.alert_id,
    )
    assert dict(row) == {
        "status": "resolved",
        "resolution": "work_order",
        "work_order_id": wid,
        "resolved_at": closed_at,
    }
    booking = (await garage.call("GET", f"/v1/me/bookings/{garage.booking_id}", garage.a))[1]
    assert (booking["status"], booking["completed_at"] is not None) == ("completed", True)
    topics = [e["topic"] for e in await outbox(garage.pool)]
    tail = topics[topics.index("work_order.opened") + 1 :]
    assert tail == ["alert.resolved", "booking.completed", "work_order.closed"]
    (resolved,) = await outbox(garage.pool, "alert.resolved")
    assert resolved["subject"] == f"alert:{garage.alert_id}"
    assert {
        "id",
        "vin",
        "type",
        "component",
        "status",
        "severity",
        "opened_at",
        "updated_at",
        "resolved_at",
        "resolution",
        "work_order_id",
        "predicted_failure_at",
        "confidence",
        "evidence",
        "recommended_action",
    } <= set(resolved["payload"])
    assert resolved["payload"]["status"] == "resolved"
    assert resolved["payload"]["work_order_id"] == wid
    assert resolved["payload"]["type"] == "brake_pad_wear"
    (wo_event,) = await outbox(garage.pool, "work_order.closed")
    assert wo_event["payload"] == closed
    assert wo_event["vin"] == VIN_A and wo_event["customer_id"] is not None
    # The customer reads the same work order; nobody else does.
    status, mine = await garage.call(
        "GET", f"/v1/me/bookings/{garage.booking_id}/work-order", garage.a
    )
    assert (status, mine) == (200, closed)
    assert (await garage.call("GET", f"/v1/me/bookings/{garage.booking_id}/work-order", garage.b))[
        0
    ] == 404
    # Closed is final.
    status, again = await garage.call(
        "POST", f"/v1/service/work-orders/{wid}/close", garage.centre_x
    )
    assert (status, again["code"]) == (409, "work_order_conflict")


async def test_a_remedy_done_is_not_found_again(garage: Garage) -> None:
    work_order = await garage.open()
    await garage.call(
        "POST",
        f"/v1/service/work-orders/{work_order['id']}/lines",
        garage.centre_x,
        {
            "kind": "labour",
            "code": "HV01",
            "description": "Recall",
            "quantity": "1",
            "unit_price_cents": 100,
            "coverage": "recall",
            "recall_code": "VW-24-ID3-HV",
        },
    )
    await garage.call("POST", f"/v1/service/work-orders/{work_order['id']}/close", garage.centre_x)
    # The next visit: booked by the admin, confirmed by the owner, checked in.
    slot = local(garage.now + timedelta(days=2), 10)
    status, booking = await garage.call(
        "POST",
        "/v1/service/bookings",
        ADMIN,
        {"vin": VIN_A, "centre_id": "centre-x", "slot_start": slot.isoformat()},
    )
    assert status == 201, booking
    await garage.call("POST", f"/v1/me/bookings/{booking['id']}/confirm", garage.a)
    await garage.call("POST", f"/v1/service/bookings/{booking['id']}/check-in", garage.centre_x)
    second = await garage.open(booking_id=booking["id"])
    assert second["recalls"] == []


async def test_what_may_not_be_done(garage: Garage) -> None:
    path = f"/v1/service/bookings/{garage.booking_id}/work-order"
    body = {"complaint": "Noise"}
    assert (await garage.call("POST", path, garage.centre_y, body))[0] == 404
    assert (await garage.call("POST", path, garage.a, body))[0] == 403
    other = await alert(garage.pool, VIN_B, now=garage.now)
    status, refused = await garage.call(
        "POST", path, garage.centre_x, {**body, "alert_ids": [other]}
    )
    assert (status, refused["code"]) == (422, "alert_not_for_vehicle")
    work_order = await garage.open()
    status, twice = await garage.call("POST", path, garage.centre_x, body)
    assert (status, twice["code"]) == (409, "already_exists")
    # With a work order open, the visit completes by closing it, not directly.
    status, direct = await garage.call(
        "POST", f"/v1/service/bookings/{garage.booking_id}/complete", garage.centre_x
    )
    assert (status, direct["code"]) == (409, "work_order_conflict")
    wo_path = f"/v1/service/work-orders/{work_order['id']}"
    assert (await garage.call("GET", wo_path, garage.centre_y))[0] == 404
    assert (await garage.call("GET", wo_path, garage.centre_x))[0] == 200
    listing = (await garage.call("GET", "/v1/service/work-orders", garage.centre_y))[1]
    assert listing == {"data": [], "count": 0}
    listing = (await garage.call("GET", "/v1/service/work-orders?status=open", ADMIN))[1]
    assert [w["id"] for w in listing["data"]] == [work_order["id"]]


async def test_a_work_order_needs_the_car_checked_in(garage: Garage) -> None:
    slot = local(garage.now + timedelta(days=3), 10)
    booking = await book(garage.platform, garage.a, VIN_A, slot)
    status, refused = await garage.call(
        "POST",
        f"/v1/service/bookings/{booking['id']}/work-order",
        garage.centre_x,
        {"complaint": "Too early"},
    )
    assert (status, refused["code"]) == (409, "work_order_conflict")
