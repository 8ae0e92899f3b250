"""Booking suggestions from alerts: the policy (pure), and the ``booking_suggester`` outbox
consumer against real alerts written by diagnostics' own store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from api.service.suggestion_policy import (
    Offer,
    Outcome,
    booking_window,
    rank_offers,
    required_skill,
    triage,
)
from api.service.suggestions import BookingSuggester, booking_suggester
from diagnostics.alert_store import AlertStore
from diagnostics.findings import AlertType, Clearance, Finding, Severity
from diagnostics.lifecycle import Source
from diagnostics.outbox import OutboxEvent
from protocol.catalogue import Powertrain
from tests.api.customer_platform import ADMIN, Platform, running_platform
from tests.api.test_service_support import (
    MARIENPLATZ,
    alert,
    centre,
    local,
    outbox,
    owner_of,
    pin_clock,
    place,
    register,
    van,
)

NOW = datetime(2030, 1, 7, 5, tzinfo=UTC)

# -- the policy (pure) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alert_type", "skill"),
    [
        ("tire_slow_leak", "tyres"),
        ("tire_pressure_loss", "tyres"),
        ("tire_something_new", "tyres"),
        ("brake_pad_wear", "brakes"),
        ("traction_battery_degradation", "ev_high_voltage"),
        ("low_voltage_battery_degradation", "diagnostics"),
        ("coolant_overheating", "diagnostics"),
        ("dtc", "diagnostics"),
        ("unheard_of", "diagnostics"),
    ],
)
def test_the_skill_each_alert_needs(alert_type: str, skill: str) -> None:
    assert required_skill(alert_type) == skill


def test_triage_considers_warnings_once_per_severity() -> None:
    assert triage("info", "open", None) is Outcome.BELOW_THRESHOLD
    assert triage("warning", "resolved", None) is Outcome.ALERT_CLOSED
    assert triage("warning", "open", None) is None
    assert triage("warning", "acknowledged", "info") is None  # rose into warning
    assert triage("warning", "open", "warning") is Outcome.ALREADY_BOOKED
    assert triage("critical", "open", "warning") is None  # rose again
    assert triage("warning", "open", "critical") is Outcome.ALREADY_BOOKED  # fell: nothing new


def test_the_window_before_the_predicted_failure() -> None:
    predicted = NOW + timedelta(days=5)
    window = booking_window("warning", predicted, NOW)
    assert (window.earliest, window.deadline) == (NOW + timedelta(hours=2), predicted)
    assert window.horizon_end == NOW + timedelta(days=14)
    assert booking_window("warning", None, NOW).deadline == NOW + timedelta(days=14)
    assert booking_window("critical", predicted, NOW).deadline == NOW + timedelta(days=3)
    # A failure predicted before anything could be booked: the deadline is the earliest slot.
    assert booking_window("critical", NOW, NOW).deadline == NOW + timedelta(hours=2)


def _offer(provider: str, km: float, start_h: int, *, mobile: bool = False) -> Offer:
    start = NOW + timedelta(hours=start_h)
    return Offer(provider, mobile, km, start, start + timedelta(hours=1))


def test_in_time_offers_mobile_first_then_nearest_then_late_ones_earliest_first() -> None:
    window = booking_window("warning", NOW + timedelta(hours=10), NOW)
    offers = [
        _offer("far", 9, 3),
        _offer("near", 1, 8),
        _offer("late-near", 0.5, 20),
        _offer("late-early", 7, 12),
        _offer("van", 4, 5, mobile=True),
    ]
    ranked = [(c.offer.provider, c.late) for c in rank_offers(offers, window)]
    assert ranked == [
        ("van", False),
        ("near", False),
        ("far", False),
        ("late-early", True),
        ("late-near", True),
    ]


# -- the consumer ---------------------------------------------------------------------------------

VIN_A = "WVWZZZ1JZXW000001"


@dataclass
class Scene:
    platform: Platform
    pool: asyncpg.Pool
    now: datetime
    a_id: str

    async def suggest(self) -> int:
        return await booking_suggester(self.pool, self.platform.clock).process_pending()

    async def bookings(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, vin, customer_id::text AS customer_id, centre_id, van_id, slot_start,"
            " status, source, alert_id FROM bookings ORDER BY id"
        )
        return [dict(r) for r in rows]

    async def outcome(self, alert_id: int) -> str | None:
        found: str | None = await self.pool.fetchval(
            "SELECT outcome FROM booking_suggestions WHERE alert_id = $1", alert_id
        )
        return found

    def local(self, hour: int, days: int = 0) -> datetime:
        return local(self.now + timedelta(days=days), hour)


# About 1, 3 and 6 km north of Marienplatz, where the car is.
NEAR, MIDDLE, FAR = (48.146, 11.576), (48.164, 11.576), (48.191, 11.576)


@pytest.fixture
async def scene(pool: asyncpg.Pool) -> AsyncIterator[Scene]:
    async with running_platform(pool) as platform:
        now = pin_clock(platform)  # Monday 06:00 in Munich
        await centre(platform, "near", at=NEAR, bays=1, skills=("brakes", "diagnostics"))
        await centre(platform, "middle", at=MIDDLE, skills=("brakes", "tyres", "diagnostics"))
        await centre(platform, "far", at=FAR, skills=("brakes", "tyres"))
        a_id, _ = await owner_of(platform, "a@example.com", VIN_A)
        await place(platform, VIN_A, *MARIENPLATZ, now)
        yield Scene(platform, pool, now, a_id)


@pytest.mark.integration
async def test_a_warning_books_the_nearest_centre_with_the_skill(scene: Scene) -> None:
    alert_id = await alert(
        scene.pool, VIN_A, now=scene.now, predicted_failure_at=scene.now + timedelta(days=3)
    )
    await scene.suggest()
    (booking,) = await scene.bookings()
    assert booking == {
        "id": booking["id"],
        "vin": VIN_A,
        "customer_id": scene.a_id,
        "centre_id": "near",
        "van_id": None,
        "slot_start": scene.local(8),  # two hours from now: the first slot that day
        "status": "requested",
        "source": "suggestion",
        "alert_id": alert_id,
    }
    (event,) = await outbox(scene.pool, "booking.")
    assert event["topic"] == "booking.suggested"
    assert str(event["customer_id"]) == scene.a_id
    assert event["payload"]["centre_name"] == "Workshop near"
    assert event["payload"]["alert_id"] == alert_id
    assert event["payload"]["status"] == "requested"
    assert await scene.outcome(alert_id) == "booked"


@pytest.mark.integration
async def test_a_full_nearest_centre_before_the_failure_passes_to_the_next(scene: Scene) -> None:
    # The failure is due at 11:00 local: slots 08, 09 and 10 end in time. Fill them at "near".
    for n, hour in enumerate((8, 9, 10)):
        other = f"WVWZZZ1JZXW00010{n}"
        await register(scene.platform, other)
        response = await scene.platform.http.post(
            "/v1/service/bookings",
            json={"vin": other, "centre_id": "near", "slot_start": scene.local(hour).isoformat()},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
    alert_id = await alert(scene.pool, VIN_A, now=scene.now, predicted_failure_at=scene.local(11))
    await scene.suggest()
    suggested = [b for b in await scene.bookings() if b["alert_id"] == alert_id]
    assert [(b["centre_id"], b["slot_start"]) for b in suggested] == [("middle", scene.local(8))]


@pytest.mark.integration
async def test_nothing_free_in_time_books_the_earliest_slot_anyway(scene: Scene) -> None:
    # Predicted to fail within the hour: no slot can end before; the earliest one is taken.
    alert_id = await alert(
        scene.pool,
        VIN_A,
        now=scene.now,
        severity=Severity.CRITICAL,
        predicted_failure_at=scene.now + timedelta(minutes=50),
    )
    await scene.suggest()
    (booking,) = await scene.bookings()
    assert (booking["centre_id"], booking["slot_start"]) == ("near", scene.local(8))
    assert await scene.outcome(alert_id) == "booked_late"


@pytest.mark.integration
async def test_an_electric_car_gets_the_mobile_van_when_it_is_in_range(scene: Scene) -> None:
    await van(scene.platform, "ev-van", "middle", range_km=10, skills=("tyres",))
    alert_id = await alert(scene.pool, VIN_A, now=scene.now, type_=AlertType.TIRE_SLOW_LEAK)
    await scene.suggest()
    (booking,) = await scene.bookings()
    assert (booking["centre_id"], booking["van_id"], booking["alert_id"]) == (
        "middle",
        "ev-van",
        alert_id,
    )
    location = await scene.pool.fetchrow(
        "SELECT service_lat, service_lon FROM bookings WHERE id = $1", booking["id"]
    )
    assert tuple(location) == MARIENPLATZ  # the van comes to where the car is


@pytest.mark.integration
async def test_a_combustion_car_goes_to_the_workshop(scene: Scene) -> None:
    await van(scene.platform, "ev-van", "middle", range_km=10, skills=("tyres",))
    ice = "WVWZZZ1JZXW000009"
    await owner_of(scene.platform, "c@example.com", ice, model="Golf", powertrain=Powertrain.ICE)
    await place(scene.platform, ice, *MARIENPLATZ, scene.now)
    await alert(scene.pool, ice, now=scene.now, type_=AlertType.TIRE_SLOW_LEAK)
    await scene.suggest()
    (booking,) = await scene.bookings()
    assert (booking["centre_id"], booking["van_id"]) == ("middle", None)  # nearest with tyres


@pytest.mark.integration
async def test_handling_the_same_event_twice_books_once(scene: Scene) -> None:
    await alert(scene.pool, VIN_A, now=scene.now)
    (opened,) = await outbox(scene.pool, "alert.opened")
    event = OutboxEvent(
        id=1,
        topic="alert.opened",
        subject=opened["subject"],
        vin=VIN_A,
        customer_id=None,
        payload=opened["payload"],
        occurred_at=scene.now,
    )
    handler = BookingSuggester(scene.platform.clock)
    for _ in range(2):
        async with scene.pool.acquire() as conn, conn.transaction():
            await handler.handle(conn, event)
    await scene.suggest()  # and once more through the consumer
    assert len(await scene.bookings()) == 1
    assert len(await outbox(scene.pool, "booking.suggested")) == 1


@pytest.mark.integration
async def test_a_rise_to_critical_suggests_again_after_a_cancellation(scene: Scene) -> None:
    finding = Finding(
        vin=VIN_A,
        type=AlertType.BRAKE_PAD_WEAR,
        component="Row1.Left",
        severity=Severity.WARNING,
        observed_at=scene.now,
        recommended_action="Replace the pads",
        confidence=0.8,
        predicted_failure_at=scene.now + timedelta(days=10),
    )
    store = AlertStore(scene.pool)
    await store.apply(Source.TREND, [finding], now=scene.now)
    await scene.suggest()
    (first,) = await scene.bookings()
    await scene.pool.execute(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = $2, cancelled_by = 'customer'"
        " WHERE id = $1",
        first["id"],
        scene.now,
    )
    # The same severity again (the prediction moved): nothing new.
    moved = replace(finding, predicted_failure_at=scene.now + timedelta(days=8))
    await store.apply(Source.TREND, [moved], now=scene.now)
    assert len(await outbox(scene.pool, "alert.updated")) == 1
    await scene.suggest()
    assert len(await scene.bookings()) == 1
    worse = replace(finding, severity=Severity.CRITICAL)
    await store.apply(Source.TREND, [worse], now=scene.now)
    await scene.suggest()
    bookings = await scene.bookings()
    assert [b["status"] for b in bookings] == ["cancelled", "requested"]


@pytest.mark.integration
async def test_what_gets_no_suggestion(scene: Scene) -> None:
    info = await alert(scene.pool, VIN_A, now=scene.now, severity=Severity.INFO)
    orphan = "WVWZZZ1JZXW000008"
    await register(scene.platform, orphan)
    no_owner = await alert(scene.pool, orphan, now=scene.now)
    unplaced = "WVWZZZ1JZXW000007"
    await owner_of(scene.platform, "d@example.com", unplaced)
    no_position = await alert(scene.pool, unplaced, now=scene.now)
    await scene.suggest()
    assert await scene.bookings() == []
    assert [await scene.outcome(a) for a in (info, no_owner, no_position)] == [
        "below_threshold",
        "no_owner",
        "no_position",
    ]


@pytest.mark.integration
async def test_an_alert_gone_by_itself_withdraws_an_unconfirmed_suggestion(scene: Scene) -> None:
    alert_id = await alert(scene.pool, VIN_A, now=scene.now)
    await scene.suggest()
    clearance = Clearance(
        VIN_A, AlertType.BRAKE_PAD_WEAR, "Row1.Left", scene.now, reason="pads replaced elsewhere"
    )
    await AlertStore(scene.pool).apply(Source.TREND, [], [clearance], now=scene.now)
    await scene.suggest()
    (booking,) = await scene.bookings()
    assert booking["status"] == "cancelled"
    assert (
        await scene.pool.fetchval("SELECT cancelled_by FROM bookings WHERE alert_id = $1", alert_id)
        == "system"
    )
    assert [e["topic"] for e in await outbox(scene.pool, "booking.")] == [
        "booking.suggested",
        "booking.cancelled",
    ]
