"""The booking suggester: an outbox consumer (``booking_suggester``) that books a suggested
service visit for alerts that need one, and withdraws an unconfirmed suggestion when its alert
goes away by itself.

On ``alert.opened`` and ``alert.updated`` it applies :mod:`api.service.suggestion_policy`: it
finds the owner (``vehicle_ownership``), the car's last known position within the owner's
window, the providers with the skill nearby and their free slots, and books the best offer as a
``requested`` booking with source ``suggestion`` (``booking.suggested`` event, customer_id = the
owner). What it decided is kept per alert in ``booking_suggestions``, with the severity it
decided at; together with the one-open-booking-per-alert index this makes handling an event
twice harmless. It runs inside the consumer's transaction (ADR 0007): the booking and the
cursor move together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from api.security.access import VehicleWindow
from api.service.bookings import NewBooking, create_booking, open_booking_for_alert, transition
from api.service.errors import SlotFullError, VehicleAlreadyBookedError
from api.service.lifecycle import Actor, BookingAction, BookingStatus
from api.service.records import BookingRecord
from api.service.slot_search import Candidate, CandidateSlots, candidates, with_free_slots
from api.service.suggestion_policy import (
    SUGGESTION_RADIUS_KM,
    Offer,
    Outcome,
    booking_window,
    rank_offers,
    required_skill,
    triage,
)
from api.service.vehicle_facts import current_owner, last_position, vehicle_facts
from diagnostics.outbox import OutboxConsumer, OutboxEvent
from protocol.clock import Clock, utc_from_ms

CONSUMER_NAME = "booking_suggester"
TOPICS = frozenset({"alert.opened", "alert.updated", "alert.resolved"})
#: The nearest providers looked at per alert (their slots are computed one by one).
MAX_PROVIDERS = 20


@dataclass(frozen=True, slots=True)
class AlertView:
    """The fields of an alert's public JSON the suggester reads."""

    id: int
    vin: str
    type: str
    severity: str
    status: str
    resolution: str | None
    predicted_failure_at: datetime | None
    recommended_action: str

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> AlertView:
        predicted = payload.get("predicted_failure_at")
        return cls(
            id=int(payload["id"]),
            vin=str(payload["vin"]),
            type=str(payload["type"]),
            severity=str(payload["severity"]),
            status=str(payload["status"]),
            resolution=payload.get("resolution"),
            predicted_failure_at=datetime.fromisoformat(predicted) if predicted else None,
            recommended_action=str(payload.get("recommended_action", "")),
        )


class BookingSuggester:
    """The :class:`diagnostics.outbox.OutboxHandler` of the ``booking_suggester`` consumer."""

    def __init__(self, clock: Clock, *, radius_km: float = SUGGESTION_RADIUS_KM) -> None:
        self._clock = clock
        self._radius_km = radius_km

    async def handle(self, conn: asyncpg.Connection, event: OutboxEvent) -> None:
        if event.topic not in TOPICS:
            return
        alert = AlertView.from_payload(dict(event.payload))
        now = utc_from_ms(self._clock.now_ms())
        if event.topic == "alert.resolved":
            await _withdraw(conn, alert, now)
            return
        previous = await conn.fetchval(
            "SELECT severity FROM booking_suggestions WHERE alert_id = $1 FOR UPDATE", alert.id
        )
        reason = triage(alert.severity, alert.status, previous)
        if reason is not None:
            if previous is None:
                await _record(conn, alert, reason, None, now)
            return
        outcome, booking = await self._suggest(conn, alert, now)
        await _record(conn, alert, outcome, booking, now)

    async def _suggest(
        self, conn: asyncpg.Connection, alert: AlertView, now: datetime
    ) -> tuple[Outcome, BookingRecord | None]:
        existing = await open_booking_for_alert(conn, alert.id)
        if existing is not None:
            return Outcome.ALREADY_BOOKED, existing
        owner = await current_owner(conn, alert.vin)
        facts = await vehicle_facts(conn, alert.vin)
        if owner is None or facts is None:
            return Outcome.NO_OWNER, None
        position = await last_position(conn, alert.vin, VehicleWindow(alert.vin, since=owner.since))
        if position is None:
            return Outcome.NO_POSITION, None
        skill = required_skill(alert.type)
        window = booking_window(alert.severity, alert.predicted_failure_at, now)
        found = await candidates(
            conn,
            lat=position.lat,
            lon=position.lon,
            skills=[skill],
            radius_km=self._radius_km,
            with_vans=facts.mobile_service_eligible,
        )
        offers = _earliest_offers(
            await with_free_slots(
                conn, found[:MAX_PROVIDERS], start=window.earliest, end=window.horizon_end
            )
        )
        for choice in rank_offers(list(offers), window):
            candidate = offers[choice.offer]
            new = NewBooking(
                vin=alert.vin,
                customer_id=owner.customer_id,
                centre_id=candidate.provider.centre.id,
                van_id=candidate.provider.van.id if candidate.provider.van else None,
                slot_start=choice.offer.start,
                source="suggestion",
                required_skills=(skill,),
                alert_id=alert.id,
                notes=f"Suggested for alert {alert.type}: {alert.recommended_action}"[:2000],
                location=(position.lat, position.lon) if candidate.provider.van else None,
            )
            try:
                booking = await create_booking(conn, new, facts, now=now)
            except (SlotFullError, VehicleAlreadyBookedError):
                continue  # taken since the slots were read, or the car is booked then: next
            return (Outcome.BOOKED_LATE if choice.late else Outcome.BOOKED), booking
        return Outcome.NO_CAPACITY, None


def _earliest_offers(found: list[CandidateSlots]) -> dict[Offer, Candidate]:
    """Each provider's earliest free slot as an :class:`Offer`, mapped to its candidate."""
    offers: dict[Offer, Candidate] = {}
    for entry in found:
        if not entry.slots:
            continue
        first = entry.slots[0]
        c = entry.candidate
        offer = Offer(c.provider.name, c.mobile, c.distance_km, first.start, first.end)
        offers[offer] = c
    return offers


async def _record(
    conn: asyncpg.Connection,
    alert: AlertView,
    outcome: Outcome,
    booking: BookingRecord | None,
    now: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO booking_suggestions (alert_id, vin, severity, outcome, booking_id, decided_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (alert_id) DO UPDATE SET severity = EXCLUDED.severity,
            outcome = EXCLUDED.outcome, booking_id = EXCLUDED.booking_id,
            decided_at = EXCLUDED.decided_at
        """,
        alert.id,
        alert.vin,
        alert.severity if alert.severity in ("info", "warning", "critical") else "info",
        outcome.value,
        booking.id if booking else None,
        now,
    )


async def _withdraw(conn: asyncpg.Connection, alert: AlertView, now: datetime) -> None:
    """The alert resolved by itself (evidence cleared, or by hand): a suggestion the owner has
    not confirmed yet is cancelled. A confirmed visit stays: the owner chose it."""
    if alert.resolution == "work_order":
        return
    booking = await open_booking_for_alert(conn, alert.id)
    if (
        booking is not None
        and booking.source == "suggestion"
        and booking.status is BookingStatus.REQUESTED
    ):
        await transition(conn, booking.id, BookingAction.CANCEL, Actor.SYSTEM, now=now)


def booking_suggester(pool: asyncpg.Pool, clock: Clock) -> OutboxConsumer:
    """The consumer the runtime starts: ``await booking_suggester(pool, clock).run(stop)``."""
    return OutboxConsumer(pool, CONSUMER_NAME, BookingSuggester(clock))
