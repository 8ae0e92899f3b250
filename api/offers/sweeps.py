"""The periodic side of the offers engine: rules whose condition is a state, not a moment
(a contract ending, how a car is driven, the season), checked for the whole fleet in SQL, each
match appended as an ``offer.triggered`` event for the ``offers`` consumer to decide on.

A match is not triggered again while a recent decision on it stands, nor while an earlier
trigger of it waits in the outbox: after a transient suppression (quiet hours, caps, driving,
nothing to offer) it is retried after ``RETRY_AFTER``; after a sent offer or a lasting reason
(no consent, the rule's own cooldown) only after the rule's cooldown. Only cars with a current
owner are considered: there is nobody to offer anything to otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from diagnostics.offers.config_store import load_rules
from diagnostics.offers.guards import SuppressReason
from diagnostics.offers.rules import (
    ContractRenewalParams,
    FeatureTrialParams,
    ModelRecommendationParams,
    OfferRule,
)
from diagnostics.offers.settings import DEFAULT_SWEEP_INTERVAL_S
from diagnostics.offers.stream_service import append_trigger
from diagnostics.offers.triggers import Trigger
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms

log = logging.getLogger(__name__)

RETRY_AFTER = timedelta(hours=6)
#: Retried after RETRY_AFTER; every other reason (and a sent offer, and the rule's own
#: cooldown) waits out the rule's cooldown.
TRANSIENT = (
    SuppressReason.QUIET_HOURS,
    SuppressReason.FREQUENCY_CAP_DAY,
    SuppressReason.FREQUENCY_CAP_WEEK,
    SuppressReason.DRIVING,
    SuppressReason.NOT_APPLICABLE,
)

_NOT_RECENTLY_DECIDED = """
NOT EXISTS (
    SELECT 1 FROM offer_decisions d
    WHERE d.rule_id = $1 AND d.vin = m.vin AND d.subject_key = m.subject_key
      AND d.triggered_at > CASE WHEN d.reason = ANY($4::text[]) THEN $2::timestamptz - $5::interval
                                ELSE $2::timestamptz - $3::interval END
)
AND NOT EXISTS (  -- triggered by an earlier sweep and not decided yet (a lagging consumer)
    SELECT 1 FROM outbox e
    WHERE e.topic = 'offer.triggered' AND e.vin = m.vin AND e.occurred_at > $2::timestamptz - $5
      AND e.payload ->> 'rule_id' = $1 AND e.payload ->> 'subject_key' = m.subject_key
)
"""
#: One sweep at a time across replicas of ``serve notify`` (the others skip that round).
_SWEEP_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('fleetlink.offers.sweep'))"

_CONTRACTS = {
    "subscription": """
        SELECT s.vin, 'subscription:' || s.id || ':' || s.ends_at::date AS subject_key,
               jsonb_build_object('contract', 'subscription', 'plan', s.plan,
                                  'ends_at', s.ends_at) AS details
        FROM subscriptions s
        JOIN vehicle_ownership o ON o.vin = s.vin AND o.ended_at IS NULL
                                AND o.customer_id = s.customer_id
        WHERE s.status IN ('trial', 'active') AND s.ends_at > $2::timestamptz
          AND s.ends_at <= $2::timestamptz + $6::interval
    """,
    "entitlement": """
        SELECT e.vin, 'entitlement:' || e.id || ':' || e.valid_until::date AS subject_key,
               jsonb_build_object('contract', 'entitlement', 'feature', e.feature,
                                  'ends_at', e.valid_until) AS details
        FROM entitlements e
        JOIN vehicle_ownership o ON o.vin = e.vin AND o.ended_at IS NULL
        WHERE e.revoked_at IS NULL AND e.valid_until > $2::timestamptz
          AND e.valid_until <= $2::timestamptz + $6::interval
    """,
    "warranty": """
        SELECT v.vin, 'warranty:' || make_date(v.model_year + w.years, 1, 1) AS subject_key,
               jsonb_build_object('contract', 'warranty', 'brand', v.brand,
                                  'ends_at', make_date(v.model_year + w.years, 1, 1)) AS details
        FROM vehicles v
        JOIN warranty_terms w ON lower(w.brand) = lower(v.brand)
        JOIN vehicle_ownership o ON o.vin = v.vin AND o.ended_at IS NULL
        WHERE make_date(v.model_year + w.years, 1, 1) > $2::timestamptz::date
          AND make_date(v.model_year + w.years, 1, 1) <= ($2::timestamptz + $6::interval)::date
    """,
}

_MODEL = """
SELECT f.vin, 'model:' || $6::text AS subject_key,
       jsonb_build_object('mean_daily_km', round(avg(f.distance_km)::numeric, 1),
                          'days', count(*), 'powertrain', v.powertrain) AS details,
       dealer.id AS place_id, dealer.name AS place_name
FROM vehicle_daily_features f
JOIN vehicles v ON v.vin = f.vin AND v.powertrain = ANY($7::text[])
JOIN vehicle_ownership o ON o.vin = f.vin AND o.ended_at IS NULL
LEFT JOIN LATERAL (  -- the dealer nearest to where the car was last seen
    SELECT p.id, p.name FROM offer_places p, vehicle_state_wide s
    WHERE s.vin = f.vin AND p.kind = 'dealer' AND p.lat IS NOT NULL
    ORDER BY (p.lat - s.current_location_latitude) ^ 2
           + ((p.lon - s.current_location_longitude)
              * cos(radians(s.current_location_latitude))) ^ 2
    LIMIT 1
) dealer ON true
WHERE f.day > ($2::timestamptz - interval '30 days')::date AND f.day <= $2::timestamptz::date
  AND f.distance_km IS NOT NULL
GROUP BY f.vin, v.powertrain, dealer.id, dealer.name
HAVING count(*) >= $8 AND avg(f.distance_km) <= $9
"""

_TRIAL = """
SELECT f.vin, 'trial:' || $6::text AS subject_key,
       jsonb_build_object('mean_air_temperature_c', round(avg(f.ambient_c)::numeric, 1))
           AS details
FROM vehicle_daily_features f
JOIN vehicle_ownership o ON o.vin = f.vin AND o.ended_at IS NULL
WHERE f.day > ($2::timestamptz - interval '7 days')::date AND f.day <= $2::timestamptz::date
  AND f.ambient_c IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM entitlements e WHERE e.vin = f.vin AND e.feature = $6 AND e.revoked_at IS NULL
        AND (e.valid_until IS NULL OR e.valid_until > $2::timestamptz))
GROUP BY f.vin
HAVING avg(f.ambient_c) <= $7
"""


_SWEPT = (ContractRenewalParams, ModelRecommendationParams, FeatureTrialParams)


@dataclass(frozen=True, slots=True)
class _Match:
    vin: str
    subject_key: str
    details: dict[str, Any]
    place_id: str | None = None


async def _matches(conn: asyncpg.Connection, rule: OfferRule, now: datetime) -> list[_Match]:
    params = rule.params
    common: list[Any] = [
        rule.id,
        now,
        timedelta(hours=rule.policy.cooldown_h),
        [r.value for r in TRANSIENT],
        RETRY_AFTER,
    ]
    rows: list[asyncpg.Record] = []
    if isinstance(params, ContractRenewalParams):
        for contract in params.contracts:
            sql = f"SELECT * FROM ({_CONTRACTS[contract]}) m WHERE {_NOT_RECENTLY_DECIDED}"
            rows += await conn.fetch(sql, *common, timedelta(days=params.within_days))
    elif isinstance(params, ModelRecommendationParams):
        sql = f"SELECT * FROM ({_MODEL}) m WHERE {_NOT_RECENTLY_DECIDED}"
        rows = await conn.fetch(
            sql,
            *common,
            params.recommended_model,
            list(params.from_powertrains),
            params.min_days_observed,
            params.max_mean_daily_km,
        )
    elif isinstance(params, FeatureTrialParams):
        sql = f"SELECT * FROM ({_TRIAL}) m WHERE {_NOT_RECENTLY_DECIDED}"
        rows = await conn.fetch(sql, *common, params.feature, params.below_air_temperature_c)
    return [
        _Match(
            r["vin"],
            r["subject_key"],
            json.loads(r["details"])
            | ({"place_name": r["place_name"]} if r.get("place_name") else {}),
            r.get("place_id"),
        )
        for r in rows
    ]


async def sweep(pool: asyncpg.Pool, now: datetime, *, detected_at_ms: int) -> int:
    """Append a trigger for every new match of every enabled periodic rule; returns how many."""
    total = 0
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(_SWEEP_LOCK):
            log.info("offers: another replica is sweeping; skipped")
            return 0
        rules = [r for r in await load_rules(conn) if r.enabled and isinstance(r.params, _SWEPT)]
        for rule in rules:
            async with conn.transaction():
                matches = await _matches(conn, rule, now)
                for match in matches:
                    await append_trigger(
                        conn,
                        Trigger(
                            rule_id=rule.id,
                            rule_version=rule.version,
                            vin=match.vin,
                            ts_ms=round(now.timestamp() * 1000),
                            subject_key=match.subject_key,
                            place_id=match.place_id,
                            speed_kmh=None,
                            details=match.details,
                        ),
                        detected_at_ms=detected_at_ms,
                    )
            total += len(matches)
    return total


async def run_sweeps(
    pool: asyncpg.Pool,
    stop: asyncio.Event,
    *,
    clock: Clock = SYSTEM_CLOCK,
    interval_s: float = DEFAULT_SWEEP_INTERVAL_S,
) -> None:
    """Sweep now and every ``interval_s`` until ``stop``; a failed sweep is logged and retried
    at the next interval."""
    while not stop.is_set():
        now_ms = clock.now_ms()
        try:
            found = await sweep(pool, utc_from_ms(now_ms), detected_at_ms=now_ms)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("offers: sweep failed (%s); next one in %.0f s", exc, interval_s)
        except Exception:  # e.g. a stored rule this version cannot read: keep the others going
            log.exception("offers: sweep failed; next one in %.0f s", interval_s)
        else:
            if found:
                log.info("offers: sweep found %d eligible", found)
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            continue
