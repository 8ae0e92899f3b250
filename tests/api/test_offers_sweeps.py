"""The periodic rules against PostgreSQL: renewals (warranty, subscription, entitlement), the
EV test drive from daily distances, the heated-seats trial in cold weather; each match
triggered once, not again while it waits in the outbox or after its decision."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from api.offers.decider import OfferDecider, offer_decider
from api.offers.seed import seed_offers
from api.offers.sweeps import sweep
from api.service.seed import seed_service_network
from bench.offer_population import populate, synthetic_vin
from tests.api.customer_platform import FakeClock

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
EXPIRING, SHORT_TRIPS, HEATED = synthetic_vin(1), synthetic_vin(2), synthetic_vin(3)


async def _world(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await seed_service_network(conn, now=NOW)
        await seed_offers(conn, now=NOW)
    members = await populate(
        pool,
        [EXPIRING, SHORT_TRIPS, HEATED],
        now=NOW,
        marketing=lambda i: True,
        facts={
            # BMW's 2 years from the model year: this one's warranty ends on 1 January 2027.
            EXPIRING: ("BMW", "i4", 2025, "bev"),
            SHORT_TRIPS: ("BMW", "320i", 2021, "ice"),
            HEATED: ("BMW", "320i", 2021, "ice"),
        },
    )
    owner = {m.vin: m.customer_id for m in members}
    async with pool.acquire() as conn, conn.transaction():
        subscription = await conn.fetchval(
            "INSERT INTO subscriptions (customer_id, vin, plan, status, started_at, ends_at)"
            " VALUES ($1, $2, 'connect_plus', 'active', $3, $4) RETURNING id",
            owner[EXPIRING],
            EXPIRING,
            NOW - timedelta(days=355),
            NOW + timedelta(days=10),
        )
        await conn.execute(
            "INSERT INTO entitlements (vin, feature, kind, subscription_id, valid_from,"
            " valid_until) VALUES ($1, 'remote_start', 'trial', $2, $3, $4)",
            EXPIRING,
            subscription,
            NOW - timedelta(days=25),
            NOW + timedelta(days=5),
        )
        await conn.execute(
            "INSERT INTO entitlements (vin, feature, kind, valid_from)"
            " VALUES ($1, 'heated_seats', 'purchase', $2)",
            HEATED,
            NOW - timedelta(days=400),
        )
        # A week of short, cold days for both ICE cars; the first was last seen in Munich.
        await conn.executemany(
            "INSERT INTO vehicle_daily_features (vin, day, samples, distance_km, ambient_c)"
            " VALUES ($1, $2, 100, $3, 2.0)",
            [
                (vin, date(2026, 12, 10) - timedelta(days=n), 18.0)
                for vin in (SHORT_TRIPS, HEATED)
                for n in range(6)
            ],
        )
        await conn.execute(
            "INSERT INTO vehicle_state_wide (vin, current_location_latitude,"
            " current_location_longitude) VALUES ($1, 48.137, 11.575)",
            SHORT_TRIPS,
        )


async def _triggered(pool: asyncpg.Pool) -> list[tuple[str, str, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT vin, payload ->> 'rule_id' AS rule, payload ->> 'subject_key' AS subject"
            " FROM outbox WHERE topic = 'offer.triggered' ORDER BY vin, rule, subject"
        )
    return [(r["vin"], r["rule"], r["subject"]) for r in rows]


async def test_each_periodic_match_is_triggered_once(pool: asyncpg.Pool) -> None:
    await _world(pool)
    found = await sweep(pool, NOW, detected_at_ms=int(NOW.timestamp() * 1000))
    triggered = await _triggered(pool)
    assert found == len(triggered) == 6
    by_rule: dict[str, list[tuple[str, str]]] = {}
    for vin, rule, subject in triggered:
        by_rule.setdefault(rule, []).append((vin, subject))
    assert sorted(s.split(":")[0] for _, s in by_rule["contract-renewal"]) == [
        "entitlement",
        "subscription",
        "warranty",
    ]
    assert (EXPIRING, "warranty:2027-01-01") in by_rule["contract-renewal"]
    assert {v for v, _ in by_rule["contract-renewal"]} == {EXPIRING}
    # Short trips in an ICE car: a test drive (the BEV is not asked).
    assert sorted(by_rule["ev-test-drive"]) == sorted(
        [(SHORT_TRIPS, "model:i4 eDrive40"), (HEATED, "model:i4 eDrive40")]
    )
    # A cold week: a trial for the car without heated seats, not for the one that has them
    # (the BEV has no daily features: no weather known).
    assert by_rule["heated-seats-trial"] == [(SHORT_TRIPS, "trial:heated_seats")]

    # Still waiting in the outbox: the next sweep triggers nothing again.
    assert await sweep(pool, NOW + timedelta(hours=1), detected_at_ms=0) == 0

    clock = FakeClock(int(NOW.timestamp() * 1000))
    await offer_decider(pool, OfferDecider(clock, max_trigger_age_s=None)).process_pending()
    async with pool.acquire() as conn:
        offers = await conn.fetch("SELECT rule_id, place_id, details FROM offers")
    assert {o["rule_id"] for o in offers} >= {"ev-test-drive", "heated-seats-trial"}
    # At the dealer nearest to where the car was last seen; a car never seen has no dealer.
    [drive] = [o for o in offers if o["rule_id"] == "ev-test-drive"]
    assert drive["place_id"] is not None and drive["place_id"].startswith("dealer-")
    async with pool.acquire() as conn:
        unseen = await conn.fetchval(
            "SELECT reason FROM offer_decisions WHERE vin = $1 AND rule_id = 'ev-test-drive'",
            HEATED,
        )
    assert unseen == "not_applicable"
    async with pool.acquire() as conn:
        decided = {
            (r["vin"], r["subject_key"]): r["reason"]
            for r in await conn.fetch("SELECT vin, subject_key, reason FROM offer_decisions")
        }
    # Decided: nothing again within 6 hours; after that only what a passing reason held back
    # (the car never seen may have been seen since: not_applicable is retried).
    assert await sweep(pool, NOW + timedelta(hours=5), detected_at_ms=0) == 0
    transient = {"not_applicable", "frequency_cap_day", "quiet_hours", "driving"}
    retried = [k for k, reason in decided.items() if reason in transient]
    assert (HEATED, "model:i4 eDrive40") in retried
    assert await sweep(pool, NOW + timedelta(hours=7), detected_at_ms=0) == len(retried)
