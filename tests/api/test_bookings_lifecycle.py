"""The booking lifecycle: the state machine itself, and through the API who may take which
step, the checks a booking must pass, and the outbox event of every transition."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from api.service.errors import InvalidTransitionError, TransitionForbiddenError
from api.service.lifecycle import (
    ALLOWED,
    TRANSITIONS,
    Actor,
    BookingAction,
    BookingStatus,
    next_status,
)
from protocol.catalogue import Powertrain
from tests.api.customer_platform import ADMIN, Platform, running_platform
from tests.api.test_service_support import (
    MARIENPLATZ,
    book,
    centre,
    centre_token,
    local,
    outbox,
    owner_of,
    pin_clock,
    place,
    van,
)

VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"
VIN_ICE = "WVWZZZ1JZXW000003"
NOW = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)

# -- the state machine (pure) ---------------------------------------------------------------------


def test_every_transition_of_the_issue_and_nothing_else() -> None:
    s, a = BookingStatus, BookingAction
    assert TRANSITIONS == {
        (s.REQUESTED, a.CONFIRM): s.CONFIRMED,
        (s.REQUESTED, a.CANCEL): s.CANCELLED,
        (s.REQUESTED, a.NO_SHOW): s.NO_SHOW,
        (s.CONFIRMED, a.CHECK_IN): s.CHECKED_IN,
        (s.CONFIRMED, a.CANCEL): s.CANCELLED,
        (s.CONFIRMED, a.NO_SHOW): s.NO_SHOW,
        (s.CHECKED_IN, a.COMPLETE): s.COMPLETED,
    }


@pytest.mark.parametrize("status", [BookingStatus.COMPLETED, BookingStatus.CANCELLED, "no_show"])
@pytest.mark.parametrize("action", list(BookingAction))
def test_final_states_allow_nothing(status: str, action: BookingAction) -> None:
    with pytest.raises(InvalidTransitionError):
        next_status(BookingStatus(status), action, Actor.FLEET_ADMIN, slot_start=LATER, now=NOW)


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        (Actor.CUSTOMER, {"confirm", "cancel"}),
        (Actor.SERVICE_CENTER, {"check_in", "complete", "no_show"}),
        (Actor.FLEET_ADMIN, {"confirm", "check_in", "complete", "cancel", "no_show"}),
        (Actor.SYSTEM, {"cancel", "complete"}),
    ],
)
def test_who_may_take_which_step(actor: Actor, allowed: set[str]) -> None:
    assert {a.value for a in ALLOWED[actor]} == allowed
    for action in set(BookingAction) - ALLOWED[actor]:
        with pytest.raises(TransitionForbiddenError):
            next_status(BookingStatus.CONFIRMED, action, actor, slot_start=LATER, now=NOW)


def test_a_customer_cancels_only_before_the_slot_starts() -> None:
    confirmed = BookingStatus.CONFIRMED
    assert (
        next_status(confirmed, BookingAction.CANCEL, Actor.CUSTOMER, slot_start=LATER, now=NOW)
        is BookingStatus.CANCELLED
    )
    with pytest.raises(InvalidTransitionError):
        next_status(confirmed, BookingAction.CANCEL, Actor.CUSTOMER, slot_start=NOW, now=NOW)
    # An admin correcting the record is not bound by it.
    assert next_status(
        confirmed, BookingAction.CANCEL, Actor.FLEET_ADMIN, slot_start=NOW, now=NOW
    ) is (BookingStatus.CANCELLED)


def test_a_no_show_is_recorded_only_once_the_slot_has_started() -> None:
    confirmed = BookingStatus.CONFIRMED
    with pytest.raises(InvalidTransitionError):
        next_status(
            confirmed, BookingAction.NO_SHOW, Actor.SERVICE_CENTER, slot_start=LATER, now=NOW
        )
    assert (
        next_status(confirmed, BookingAction.NO_SHOW, Actor.SERVICE_CENTER, slot_start=NOW, now=NOW)
        is BookingStatus.NO_SHOW
    )


# -- through the API ------------------------------------------------------------------------------


@dataclass
class Shop:
    platform: Platform
    now: datetime
    a: dict[str, str]
    a_id: str
    b: dict[str, str]
    centre_x: dict[str, str]
    centre_y: dict[str, str]

    def slot(self, hour: int, days: int = 1) -> datetime:
        return local(self.now + timedelta(days=days), hour)


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> AsyncIterator[Shop]:
    async with running_platform(pool) as platform:
        now = pin_clock(platform)
        await centre(platform, "centre-x", bays=1)
        await centre(platform, "centre-y", at=(48.2, 11.6))
        a_id, a = await owner_of(platform, "a@example.com", VIN_A)
        _, b = await owner_of(platform, "b@example.com", VIN_B)
        yield Shop(
            platform,
            now,
            a,
            a_id,
            b,
            await platform.client("sc-x", "service_center", ["centre-x"]),
            await platform.client("sc-y", "service_center", ["centre-y"]),
        )


async def _post(shop: Shop, path: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    response = await shop.platform.http.post(path, headers=headers)
    return response.status_code, response.json()


@pytest.mark.integration
async def test_the_whole_journey_with_an_event_per_step(shop: Shop, pool: asyncpg.Pool) -> None:
    booking = await book(shop.platform, shop.a, VIN_A, shop.slot(10), notes="Squeaky brakes")
    assert booking["status"] == "requested"
    assert booking["source"] == "customer"
    assert booking["customer_id"] == shop.a_id
    assert booking["slot_end"] == (shop.slot(11)).isoformat().replace("+00:00", "Z")
    assert booking["local_slot_start"].endswith("T10:00:00+01:00") or booking[
        "local_slot_start"
    ].endswith("T10:00:00+02:00")
    bid = booking["id"]
    status, body = await _post(shop, f"/v1/me/bookings/{bid}/confirm", shop.a)
    assert (status, body["status"]) == (200, "confirmed")
    status, body = await _post(shop, f"/v1/service/bookings/{bid}/check-in", shop.centre_x)
    assert (status, body["status"]) == (200, "checked_in")
    status, body = await _post(shop, f"/v1/service/bookings/{bid}/complete", shop.centre_x)
    assert (status, body["status"]) == (200, "completed")
    assert body["confirmed_at"] and body["checked_in_at"] and body["completed_at"]
    events = await outbox(pool, "booking.")
    assert [e["topic"] for e in events] == [
        "booking.requested",
        "booking.confirmed",
        "booking.checked_in",
        "booking.completed",
    ]
    for event in events:
        assert event["subject"] == f"booking:{bid}"
        assert str(event["customer_id"]) == shop.a_id
        assert event["vin"] == VIN_A
        assert event["payload"]["centre_name"] == "Workshop centre-x"
    assert [e["payload"]["status"] for e in events] == [
        "requested",
        "confirmed",
        "checked_in",
        "completed",
    ]


@pytest.mark.integration
async def test_each_party_may_take_only_its_own_steps(shop: Shop) -> None:
    bid = (await book(shop.platform, shop.a, VIN_A, shop.slot(10)))["id"]
    # Not visible: B and the other centre get 404, as for an unknown booking.
    assert (await _post(shop, f"/v1/me/bookings/{bid}/confirm", shop.b))[0] == 404
    assert (await _post(shop, f"/v1/service/bookings/{bid}/check-in", shop.centre_y))[0] == 404
    # Visible, but not this role's step: 403.
    status, body = await _post(shop, f"/v1/service/bookings/{bid}/confirm", shop.centre_x)
    assert (status, body["code"]) == (403, "transition_forbidden")
    # Customers do not use the service routes at all.
    assert (await _post(shop, f"/v1/service/bookings/{bid}/check-in", shop.a))[0] == 403
    # Not from this status: 409.
    status, body = await _post(shop, f"/v1/service/bookings/{bid}/check-in", shop.centre_x)
    assert (status, body["code"]) == (409, "invalid_transition")
    assert (await _post(shop, f"/v1/me/bookings/{bid}/confirm", shop.a))[0] == 200
    assert (await _post(shop, f"/v1/me/bookings/{bid}/confirm", shop.a))[0] == 409
    status, body = await _post(shop, f"/v1/service/bookings/{bid}/no-show", shop.centre_x)
    assert (status, body["code"]) == (409, "invalid_transition")  # not due yet
    status, body = await _post(shop, f"/v1/me/bookings/{bid}/cancel", shop.a)
    assert (status, body["status"], body["cancelled_by"]) == (200, "cancelled", "customer")
    # The admin may do anything the status allows, but a cancelled booking is final.
    assert (await _post(shop, f"/v1/service/bookings/{bid}/confirm", ADMIN))[0] == 409


@pytest.mark.integration
async def test_a_booking_must_be_a_real_slot_with_the_skills(shop: Shop) -> None:
    http, a = shop.platform.http, shop.a

    async def refused(code: str, status: int = 422, **body: object) -> None:
        payload = {"vin": VIN_A, "centre_id": "centre-x", **body}
        response = await http.post("/v1/me/bookings", json=payload, headers=a)
        assert (response.status_code, response.json()["code"]) == (status, code), response.text

    await refused("not_a_slot", slot_start=shop.slot(10, days=-1).isoformat())  # past
    await refused("not_a_slot", slot_start=shop.slot(10).replace(minute=30).isoformat())
    await refused("not_a_slot", slot_start=shop.slot(18).isoformat())  # closed by then
    await refused("not_a_slot", slot_start=shop.slot(7).isoformat())  # not open yet
    await refused(
        "skill_missing", slot_start=shop.slot(10).isoformat(), required_skills=["bodywork"]
    )
    await refused("invalid_request", slot_start="2030-01-08T10:00:00")  # no offset
    await refused("invalid_request", slot_start="0001-01-01T00:00:00+05:00")  # no overflow
    await refused("not_a_slot", slot_start=local(shop.now + timedelta(days=400), 10).isoformat())
    await refused("invalid_request", slot_start=shop.slot(10).isoformat(), colour="red")
    await refused(
        "centre_not_found", 404, centre_id="nowhere", slot_start=shop.slot(10).isoformat()
    )
    # Someone else's car looks exactly like an unknown one.
    response = await http.post(
        "/v1/me/bookings",
        json={"vin": VIN_B, "centre_id": "centre-x", "slot_start": shop.slot(10).isoformat()},
        headers=a,
    )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


@pytest.mark.integration
async def test_a_full_slot_and_a_car_booked_twice_are_refused(shop: Shop) -> None:
    await book(shop.platform, shop.a, VIN_A, shop.slot(10))
    taken = await book(shop.platform, shop.b, VIN_B, shop.slot(10), expect=409)
    assert taken["code"] == "slot_full"
    twice = await book(
        shop.platform, shop.a, VIN_A, shop.slot(10), centre_id="centre-y", expect=409
    )
    assert twice["code"] == "vehicle_already_booked"
    await book(shop.platform, shop.b, VIN_B, shop.slot(11))  # the next slot is free


@pytest.mark.integration
async def test_a_cancelled_booking_frees_its_slot(shop: Shop) -> None:
    bid = (await book(shop.platform, shop.a, VIN_A, shop.slot(10)))["id"]
    await _post(shop, f"/v1/me/bookings/{bid}/cancel", shop.a)
    await book(shop.platform, shop.b, VIN_B, shop.slot(10))


@pytest.mark.integration
async def test_mobile_service_is_for_electric_cars_within_range(shop: Shop) -> None:
    platform = shop.platform
    await van(platform, "van-1", "centre-x", range_km=10)
    slot = shop.slot(8)
    # The car's last known position is used when no location is given.
    await place(platform, VIN_A, MARIENPLATZ[0] + 0.02, MARIENPLATZ[1], shop.now)
    booking = await book(platform, shop.a, VIN_A, slot, centre_id=None, van_id="van-1")
    assert (booking["kind"], booking["centre_id"], booking["van_id"]) == (
        "mobile",
        "centre-x",
        "van-1",
    )
    assert booking["location"] == {"lat": MARIENPLATZ[0] + 0.02, "lon": MARIENPLATZ[1]}
    assert booking["slot_end"] == local(shop.now + timedelta(days=1), 10).isoformat().replace(
        "+00:00", "Z"
    )  # a van's slot is two hours
    far = {"lat": 48.5, "lon": 11.6}
    refused = await book(
        platform,
        shop.b,
        VIN_B,
        shop.slot(12),
        centre_id=None,
        van_id="van-1",
        location=far,
        expect=422,
    )
    assert refused["code"] == "mobile_service_not_eligible"
    _, ice = await owner_of(platform, "c@example.com", VIN_ICE, powertrain=Powertrain.ICE)
    refused = await book(
        platform,
        ice,
        VIN_ICE,
        shop.slot(12),
        centre_id=None,
        van_id="van-1",
        location={"lat": MARIENPLATZ[0], "lon": MARIENPLATZ[1]},
        expect=422,
    )
    assert refused["code"] == "mobile_service_not_eligible"
    # The van does one job at a time: its slot is taken even though the centre has a bay.
    busy = await book(
        platform,
        shop.b,
        VIN_B,
        slot,
        centre_id=None,
        van_id="van-1",
        location={"lat": MARIENPLATZ[0], "lon": MARIENPLATZ[1]},
        expect=409,
    )
    assert busy["code"] == "slot_full"


@pytest.mark.integration
async def test_the_centre_records_a_no_show_once_the_slot_has_begun(shop: Shop) -> None:
    platform = shop.platform
    bid = (await book(platform, shop.a, VIN_A, shop.slot(10)))["id"]
    await _post(shop, f"/v1/me/bookings/{bid}/confirm", shop.a)
    platform.clock.ms = int(shop.slot(10).timestamp() * 1000) + 1
    centre_x = centre_token(platform, "sc-x", ["centre-x"])
    status, body = await _post(shop, f"/v1/service/bookings/{bid}/no-show", centre_x)
    assert (status, body["status"]) == (200, "no_show")
    assert body["no_show_at"] is not None


@pytest.mark.integration
async def test_lists_show_each_party_its_own(shop: Shop) -> None:
    platform = shop.platform
    await book(platform, shop.a, VIN_A, shop.slot(10))
    await book(platform, shop.b, VIN_B, shop.slot(10), centre_id="centre-y")
    mine = (await platform.http.get("/v1/me/bookings", headers=shop.a)).json()
    assert [b["vin"] for b in mine["data"]] == [VIN_A] and mine["count"] == 1
    theirs = (await platform.http.get("/v1/service/bookings", headers=shop.centre_y)).json()
    assert [b["vin"] for b in theirs["data"]] == [VIN_B] and theirs["count"] == 1
    everyone = (await platform.http.get("/v1/service/bookings", headers=ADMIN)).json()
    assert everyone["count"] == 2
    filtered = await platform.http.get(
        "/v1/service/bookings", params={"status": "confirmed"}, headers=ADMIN
    )
    assert filtered.json()["count"] == 0
    # A centre naming another centre sees nothing of it.
    other = await platform.http.get(
        "/v1/service/bookings", params={"centre_id": "centre-y"}, headers=shop.centre_x
    )
    assert other.json()["count"] == 0
    assert (await platform.http.get("/v1/service/bookings", headers=shop.a)).status_code == 403


@pytest.mark.integration
async def test_a_centre_books_follow_ups_only_for_cars_it_sees_at_its_own_centres(
    shop: Shop,
) -> None:
    platform = shop.platform
    body = {"vin": VIN_A, "centre_id": "centre-x", "slot_start": shop.slot(12).isoformat()}
    before = await platform.http.post("/v1/service/bookings", json=body, headers=shop.centre_x)
    assert before.status_code == 404  # it does not see the car yet
    await book(platform, shop.a, VIN_A, shop.slot(10))
    follow_up = await platform.http.post(
        "/v1/service/bookings",
        json={**body, "slot_start": shop.slot(10, days=8).isoformat()},
        headers=shop.centre_x,
    )
    assert follow_up.status_code == 201, follow_up.text
    assert (follow_up.json()["source"], follow_up.json()["customer_id"]) == (
        "service_center",
        shop.a_id,
    )
    elsewhere = await platform.http.post(
        "/v1/service/bookings",
        json={**body, "centre_id": "centre-y", "slot_start": shop.slot(10, days=9).isoformat()},
        headers=shop.centre_x,
    )
    assert elsewhere.status_code == 403
    by_admin = await platform.http.post(
        "/v1/service/bookings",
        json={**body, "slot_start": shop.slot(14).isoformat()},
        headers=ADMIN,
    )
    assert (by_admin.status_code, by_admin.json()["source"]) == (201, "admin")


@pytest.mark.integration
async def test_erasure_cancels_open_bookings_and_forgets_the_person(
    shop: Shop, pool: asyncpg.Pool
) -> None:
    platform = shop.platform
    bid = (await book(platform, shop.a, VIN_A, shop.slot(10), notes="Call me on 0171 555"))["id"]
    assert (await platform.http.delete("/v1/me", headers=shop.a)).status_code == 200
    row = await pool.fetchrow(
        "SELECT customer_id, notes, status, cancelled_by FROM bookings WHERE id = $1", bid
    )
    assert dict(row) == {
        "customer_id": None,
        "notes": None,
        "status": "cancelled",
        "cancelled_by": "system",
    }
    # The freed slot can be booked again.
    await book(platform, shop.b, VIN_B, shop.slot(10))
