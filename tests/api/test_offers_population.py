"""Consent, caps and quiet hours over a simulated population, through the real ``offers`` outbox
consumer and notifier against PostgreSQL: half the customers withheld marketing consent and get
no promotion; caps and cooldowns are never exceeded; quiet hours are honoured; every trigger
has exactly one recorded decision with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from api.customers import gdpr
from api.notifications.notifier import notifier
from api.offers.decider import OfferDecider, offer_decider
from api.offers.seed import seed_offers
from api.service.seed import seed_service_network
from bench.offer_population import populate, synthetic_vin
from diagnostics.offers.guards import Caps
from diagnostics.offers.stream_service import append_trigger
from diagnostics.offers.triggers import Trigger
from tests.api.customer_platform import FakeClock

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
CARS = 40
HOURS = 72
CAPS = Caps(per_day=1, per_week=2)


def _quiet(i: int) -> tuple[time, time] | None:
    return (time(22, 0), time(7, 0)) if i % 4 == 1 else None


async def test_consent_caps_and_quiet_hours_hold_for_a_population(pool: asyncpg.Pool) -> None:
    vins = [synthetic_vin(i) for i in range(CARS)]
    async with pool.acquire() as conn:
        await seed_service_network(conn, now=START)
        await seed_offers(conn, now=START)
    members = await populate(
        pool,
        vins,
        now=START,
        marketing=lambda i: i % 2 == 0,
        location=lambda i: i % 10 != 4,
        quiet_hours=_quiet,
    )
    # Every car meets the fuel rule every 90 minutes and the service rule every 5 hours, for
    # three days: far more eligible moments than the caps allow.
    triggers = []
    for vin in vins:
        for minute in range(0, HOURS * 60, 90):
            triggers.append(_trigger("fuel-discount-partner", vin, minute, "place:fuel-004"))
        for minute in range(30, HOURS * 60, 300):
            triggers.append(
                _trigger("service-booking-near-dealer", vin, minute, "place:dealer-001")
            )
    triggers.sort(key=lambda t: t.ts_ms)
    async with pool.acquire() as conn, conn.transaction():
        for trigger in triggers:
            await append_trigger(conn, trigger, detected_at_ms=trigger.ts_ms)

    decider = OfferDecider(
        FakeClock(int(START.timestamp() * 1000)), caps=CAPS, max_trigger_age_s=None
    )
    # It reads its own offer.created events too (and passes them by).
    assert await offer_decider(pool, decider).process_pending() >= len(triggers)
    await notifier(pool, FakeClock(int(START.timestamp() * 1000))).process_pending()

    async with pool.acquire() as conn:
        decisions = await conn.fetchval("SELECT count(*) FROM offer_decisions")
        offers = await conn.fetch(
            "SELECT customer_id, rule_id, category, triggered_at FROM offers ORDER BY triggered_at"
        )
        reasons = dict(
            await conn.fetch(
                "SELECT reason, count(*) FROM offer_decisions WHERE outcome = 'suppressed'"
                " GROUP BY reason"
            )
        )
        promotions_notified = await conn.fetchval(
            "SELECT count(*) FROM notifications WHERE topic = 'offer.created'"
            " AND category = 'promotion'"
        )
    assert decisions == len(triggers)
    by_customer = {m.customer_id: m for m in members}
    promotions = [o for o in offers if o["category"] == "promotion"]
    assert promotions, "the consenting half got promotions"
    assert promotions_notified == len(promotions)
    # 0 promotions without marketing consent; 0 location offers without location consent.
    assert not [o for o in promotions if not by_customer[o["customer_id"]].marketing]
    assert not [o for o in offers if not by_customer[o["customer_id"]].location]
    assert reasons["no_marketing_consent"] > 0
    assert reasons["no_location_consent"] > 0
    assert reasons["frequency_cap_day"] > 0
    assert reasons["frequency_cap_week"] > 0
    assert reasons["rule_cooldown"] > 0
    assert reasons["quiet_hours"] > 0
    # Caps: no rolling 24 h (7 days) window holds more than the cap.
    for customer_id in by_customer:
        times = [o["triggered_at"] for o in offers if o["customer_id"] == customer_id]
        for i, at in enumerate(times):
            in_day = [t for t in times[: i + 1] if at - t < timedelta(days=1)]
            in_week = [t for t in times[: i + 1] if at - t < timedelta(days=7)]
            assert len(in_day) <= CAPS.per_day, (customer_id, times)
            assert len(in_week) <= CAPS.per_week, (customer_id, times)
    # Cooldown: one rule reaches a customer at most once per 24 h (the fuel rule's).
    fuel = {}
    for o in offers:
        if o["rule_id"] != "fuel-discount-partner":
            continue
        last = fuel.get(o["customer_id"])
        assert last is None or o["triggered_at"] - last >= timedelta(hours=24)
        fuel[o["customer_id"]] = o["triggered_at"]
    # Quiet hours (22:00-07:00 Berlin): nothing was sent inside them.
    berlin = ZoneInfo("Europe/Berlin")
    for o in offers:
        if by_customer[o["customer_id"]].quiet_hours is not None:
            local = o["triggered_at"].astimezone(berlin).time()
            assert time(7, 0) <= local < time(22, 0), o


async def test_a_decision_is_taken_once_even_when_the_consumer_runs_again(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await seed_offers(conn, now=START)
    await populate(pool, [synthetic_vin(1)], now=START, marketing=lambda i: True)
    async with pool.acquire() as conn, conn.transaction():
        trigger = _trigger("fuel-discount-partner", synthetic_vin(1), 600, "place:fuel-004")
        await append_trigger(conn, trigger, detected_at_ms=trigger.ts_ms)
    decider = OfferDecider(FakeClock(int(START.timestamp() * 1000)), max_trigger_age_s=None)
    assert await offer_decider(pool, decider).process_pending() >= 1
    await offer_decider(pool, decider).process_pending()  # its own offer.created, passed by
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT outcome, offer_id FROM offer_decisions")
        code = await conn.fetchval("SELECT code FROM offers")
    assert [r["outcome"] for r in rows] == ["sent"]
    assert code.startswith("FL-") and len(code) == 12


def _trigger(rule_id: str, vin: str, minute: int, subject: str) -> Trigger:
    ts = START + timedelta(minutes=minute)
    return Trigger(
        rule_id=rule_id,
        rule_version=1,
        vin=vin,
        ts_ms=int(ts.timestamp() * 1000),
        subject_key=f"{subject}:{minute}",
        place_id=subject.removeprefix("place:"),
        speed_kmh=30.0,
        details={"place_name": "Star Test", "distance_m": 900, "level_pct": 12.0},
    )


async def test_a_late_trigger_counts_offers_on_both_sides_of_it(pool: asyncpg.Pool) -> None:
    """Decisions do not arrive in event-time order: an earlier trigger decided after a later
    offer must still respect the cap around it."""
    async with pool.acquire() as conn:
        await seed_service_network(conn, now=START)
        await seed_offers(conn, now=START)
    vin = synthetic_vin(7)
    await populate(pool, [vin], now=START, marketing=lambda i: True)
    fuel = _trigger("fuel-discount-partner", vin, 600, "place:fuel-004")
    service = Trigger(
        rule_id="service-booking-near-dealer",
        rule_version=1,
        vin=vin,
        ts_ms=fuel.ts_ms - 5 * 3_600_000,  # five hours earlier, decided later
        subject_key="place:dealer-001",
        place_id="dealer-001",
        speed_kmh=0.0,
        details={
            "place_name": "Dealer",
            "reason": "service_due",
            "place_lat": 48.137,
            "place_lon": 11.575,
        },
    )
    decider = OfferDecider(
        FakeClock(int(START.timestamp() * 1000)), caps=Caps(per_day=1), max_trigger_age_s=None
    )
    for trigger in (fuel, service):
        async with pool.acquire() as conn, conn.transaction():
            await append_trigger(conn, trigger, detected_at_ms=trigger.ts_ms)
        await offer_decider(pool, decider).process_pending()
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT rule_id, outcome, reason FROM offer_decisions ORDER BY id")
    assert [(r["rule_id"], r["outcome"], r["reason"]) for r in rows] == [
        ("fuel-discount-partner", "sent", None),
        ("service-booking-near-dealer", "suppressed", "frequency_cap_day"),
    ]


async def test_export_lists_offers_and_decisions_and_erasure_blanks_where_the_car_was(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await seed_offers(conn, now=START)
    vin = synthetic_vin(3)
    [member] = await populate(pool, [vin], now=START, marketing=lambda i: True)
    decider = OfferDecider(FakeClock(int(START.timestamp() * 1000)), max_trigger_age_s=None)
    for minute in (600, 660):  # sent, then within the cooldown: suppressed
        async with pool.acquire() as conn, conn.transaction():
            trigger = _trigger("fuel-discount-partner", vin, minute, "place:fuel-004")
            await append_trigger(conn, trigger, detected_at_ms=trigger.ts_ms)
        await offer_decider(pool, decider).process_pending()

    data = await gdpr.collect(pool, member.customer_id, START + timedelta(days=1))
    assert [o["place_id"] for o in data.offers] == ["fuel-004"]
    assert sorted((d["outcome"], d["reason"]) for d in data.offer_decisions) == [
        ("sent", None),
        ("suppressed", "rule_cooldown"),
    ]

    await gdpr.erase(pool, member.customer_id, START + timedelta(days=1))
    async with pool.acquire() as conn:
        offer = await conn.fetchrow(
            "SELECT customer_id, place_id, details::text AS details, subject_key FROM offers"
        )
        subjects = await conn.fetch("SELECT customer_id, subject_key FROM offer_decisions")
    assert dict(offer) == {
        "customer_id": None,
        "place_id": None,
        "details": "{}",
        "subject_key": "erased",
    }
    assert {(r["customer_id"], r["subject_key"]) for r in subjects} == {(None, "erased")}
