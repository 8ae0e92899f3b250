"""``fleetlink eval offers``: a simulated day of N cars through the offers engine, with the
default rules, and the KPI table it produces.

1. The simulate benchmark's stack (``bench.simulate_scale``): embedded PostgreSQL, a broker
   (Mosquitto when installed), the real ingest worker, and ``fleetlink simulate --days D
   --seed S`` as its own process, backfilling the last D days of the fleet's driving.
2. Before the cars start, every car gets an owner (``bench.offer_population``): half withheld
   marketing consent, one in ten location consent, a quarter keep quiet hours 22:00-07:00.
   The offer places, partners and default rules are seeded as ``fleetlink up`` does.
3. Ingest hands every committed batch to the offers engine (``OfferStream``), whose triggers
   the real ``offers`` consumer decides on and the real notifier turns into notifications;
   after the backfill, the daily features are refreshed and the periodic rules swept as of the
   end of the day.
4. Customers react (seeded): some open and click their offers, partners redeem some codes,
   through the same store functions the API routes call.
5. The KPIs per rule (``GET /v1/offers/kpis``' query), and the audit: promotions sent without
   marketing consent, location offers without location consent, cap and cooldown violations,
   sends inside quiet hours (all must be 0), and the trigger-to-delivery percentiles.

Decisions use the data's own time (a replayed day decides as the live day would); staleness is
not judged (the whole day is hours old by design). Trigger-to-delivery is wall time, from ingest
handing the committed batch to the offers engine to the app delivery of the notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any, TextIO

import asyncpg

from api.notifications.notifier import notifier
from api.offers.decider import OfferDecider, offer_decider
from api.offers.seed import seed_offers
from api.offers.store import kpis, mark, redeem
from api.offers.sweeps import sweep
from api.service.seed import seed_service_network
from bench.ingest import BrokerChoice
from bench.offer_population import populate
from bench.simulate_scale import SimulateBenchOptions, run_simulate_bench
from diagnostics.features import refresh_daily_features
from diagnostics.offers.geo_index import GeofenceIndex
from diagnostics.offers.guards import Caps
from diagnostics.offers.rules import LOCATION_KINDS, STREAM_KINDS
from diagnostics.offers.stream_service import OfferStream
from diagnostics.offers.triggers import TriggerEngine
from diagnostics.outbox import OutboxConsumer
from fleetlink.diagnostics_feed import stream_input
from ingest.settings import IngestSettings
from ingest.store import Batch
from simulator.fleet import build_fleet

DAY_MS = 86_400_000
SIMULATOR_S_PER_VEHICLE_DAY = 1.5
SIMULATOR_MIN_TIMEOUT_S = 600.0
SETTLE_TIMEOUT_S = 600.0
QUIET = (clock_time(22, 0), clock_time(7, 0))
#: How customers react (seeded): of the offers sent, opened; of those, clicked; codes redeemed.
OPEN_RATE, CLICK_RATE, REDEEM_RATE = 0.6, 0.5, 0.35


@dataclass
class OffersEvalOptions:
    vehicles: int = 1000
    days: float = 1.0
    seed: int = 21
    broker: BrokerChoice = "auto"
    #: Replay the day at most this many times faster than real time (None: as fast as ingest
    #: takes it). A live fleet's load is what trigger-to-delivery is promised under; an
    #: unpaced backfill runs ingest flat out in the same process and measures the backlog.
    speedup: float | None = 240.0


def _marketing(i: int) -> bool:
    return i % 2 == 0


def _location(i: int) -> bool:
    return i % 10 != 9


def _quiet(i: int) -> tuple[clock_time, clock_time] | None:
    return QUIET if i % 4 == 1 else None


class OffersEval:
    """The hooks around the simulate benchmark (``bench.simulate_scale.BenchHooks``)."""

    def __init__(self, options: OffersEvalOptions, start_ms: int, end_ms: int) -> None:
        self._options = options
        self._start_ms, self._end_ms = start_ms, end_ms
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._consumers: list[OutboxConsumer] = []
        self.wall_start = datetime.now(UTC)

    async def start(self, pool: asyncpg.Pool) -> Callable[[Batch], None] | None:
        start = datetime.fromtimestamp(self._start_ms / 1000, UTC)
        async with pool.acquire() as conn:
            await seed_service_network(conn, now=start)
            await seed_offers(conn, now=start)
        profiles = build_fleet(self._options.vehicles, self._options.seed)
        facts = {str(p.vin): (p.brand, p.model, p.model_year, p.powertrain.value) for p in profiles}
        await populate(
            pool,
            list(facts),
            now=start,
            marketing=_marketing,
            location=_location,
            quiet_hours=_quiet,
            facts=facts,
        )
        self._offers = OfferStream(
            pool, TriggerEngine([], GeofenceIndex([])), queue_batches=1_000_000
        )
        self._decider = OfferDecider(max_trigger_age_s=None)
        self._consumers = [offer_decider(pool, self._decider), notifier(pool)]
        self._tasks = [asyncio.create_task(self._offers.run(self._stop))]
        self._tasks += [asyncio.create_task(c.run(self._stop)) for c in self._consumers]
        offers = self._offers

        def on_commit(batch: Batch) -> None:
            samples, _ = stream_input(batch)
            offers.submit(samples)

        return on_commit

    async def finish(
        self, pool: asyncpg.Pool, figures: dict[str, Any], say: Callable[[str], None]
    ) -> None:
        try:
            figures["offers"] = await self._evaluate(pool, say)
        finally:
            self._stop.set()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, 30)

    async def _evaluate(self, pool: asyncpg.Pool, say: Callable[[str], None]) -> dict[str, Any]:
        say("eval: waiting for the offers engine to finish the backfill's batches")
        await self._settle(pool)
        end = datetime.fromtimestamp(self._end_ms / 1000, UTC)
        async with pool.acquire() as conn:
            for n in range(8):
                await refresh_daily_features(conn, day=(end - timedelta(days=n)).date())
        swept = await sweep(pool, end, detected_at_ms=time.time_ns() // 1_000_000)
        say(f"eval: periodic rules swept as of {end:%Y-%m-%d %H:%M} UTC: {swept} eligible")
        await self._settle(pool)
        await self._react(pool)
        async with pool.acquire() as conn:
            rows = await kpis(conn, self.wall_start, datetime.now(UTC) + timedelta(minutes=1))
            audit = await _audit(conn)
            latency = await _latency(conn)
        stats = self._offers.stats
        return {
            "kpis": [dataclasses.asdict(row) for row in rows],
            "audit": audit,
            "trigger_to_delivery_s": latency,
            "engine": {
                "batches": stats.batches,
                "samples": stats.samples,
                "dropped_batches": stats.dropped_batches,
                "triggers": stats.triggers,
                "geofence_events": stats.geofence_events,
            },
            "decider": {
                "sent": self._decider.stats.sent,
                "suppressed": self._decider.stats.suppressed,
            },
            "swept": swept,
        }

    async def _settle(self, pool: asyncpg.Pool) -> None:
        """Until the engine's queue is empty and both consumers have passed every event."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            async with pool.acquire() as conn:
                pending = await conn.fetchval(
                    "SELECT count(*) FROM outbox o, outbox_cursors c"
                    " WHERE c.consumer = ANY($1::text[]) AND (o.txid, o.id) > (c.txid, c.id)",
                    [c.name for c in self._consumers],
                )
            if pending == 0 and self._offers.idle:
                await asyncio.sleep(1.0)
                return
            await asyncio.sleep(0.5)
        raise TimeoutError("the offers pipeline did not settle")

    async def _react(self, pool: asyncpg.Pool) -> None:
        rng = random.Random(f"fleetlink.offers-eval:{self._options.seed}")
        async with pool.acquire() as conn:
            sent = await conn.fetch(
                "SELECT o.id, o.customer_id, o.code, o.partner_id, o.triggered_at, o.expires_at"
                " FROM offers o ORDER BY o.triggered_at, o.id"
            )
            for offer in sent:
                if rng.random() >= OPEN_RATE:
                    continue
                seen = offer["triggered_at"] + timedelta(minutes=rng.uniform(1, 30))
                await mark(conn, offer["customer_id"], offer["id"], "opened", seen)
                if rng.random() >= CLICK_RATE:
                    continue
                await mark(conn, offer["customer_id"], offer["id"], "clicked", seen)
                if offer["partner_id"] is None or rng.random() >= REDEEM_RATE:
                    continue
                at = min(seen + timedelta(minutes=rng.uniform(5, 60)), offer["expires_at"])
                await redeem(conn, offer["partner_id"], offer["code"], None, at)


_AUDIT = {
    "promotions_without_marketing_consent": """
        SELECT count(*) FROM offers o
        LEFT JOIN customer_consents c ON c.customer_id = o.customer_id AND c.purpose = 'marketing'
        WHERE o.category = 'promotion' AND coalesce(c.granted, false) = false
    """,
    "location_offers_without_location_consent": """
        SELECT count(*) FROM offers o
        LEFT JOIN customer_consents c ON c.customer_id = o.customer_id AND c.purpose = 'location'
        WHERE o.kind = ANY($1::text[]) AND coalesce(c.granted, false) = false
    """,
    "day_cap_violations": """
        SELECT count(*) FROM offers o
        WHERE (SELECT count(*) FROM offers p WHERE p.customer_id = o.customer_id
               AND p.triggered_at > o.triggered_at - interval '1 day'
               AND p.triggered_at <= o.triggered_at) > $1
    """,
    "week_cap_violations": """
        SELECT count(*) FROM offers o
        WHERE (SELECT count(*) FROM offers p WHERE p.customer_id = o.customer_id
               AND p.triggered_at > o.triggered_at - interval '7 days'
               AND p.triggered_at <= o.triggered_at) > $1
    """,
    "cooldown_violations": """
        SELECT count(*) FROM offers o JOIN offer_rules r ON r.id = o.rule_id
        WHERE EXISTS (SELECT 1 FROM offers p WHERE p.customer_id = o.customer_id
               AND p.rule_id = o.rule_id AND p.id <> o.id
               AND p.triggered_at <= o.triggered_at
               AND p.triggered_at > o.triggered_at
                   - make_interval(secs => (r.definition #>> '{policy,cooldown_h}')::float * 3600))
    """,
    "sent_in_quiet_hours": """
        SELECT count(*) FROM offers o JOIN customers c ON c.id = o.customer_id
        WHERE c.quiet_hours_start IS NOT NULL
          AND ((o.triggered_at AT TIME ZONE c.timezone)::time >= c.quiet_hours_start
               OR (o.triggered_at AT TIME ZONE c.timezone)::time < c.quiet_hours_end)
    """,
}


async def _audit(conn: asyncpg.Connection) -> dict[str, int]:
    caps = Caps()
    result = {}
    for name, sql in _AUDIT.items():
        args = {
            "day_cap_violations": (caps.per_day,),
            "week_cap_violations": (caps.per_week,),
            "location_offers_without_location_consent": (
                sorted(kind.value for kind in LOCATION_KINDS),
            ),
        }
        result[name] = int(await conn.fetchval(sql, *args.get(name, ())))
    return result


async def _latency(conn: asyncpg.Connection) -> dict[str, float | int | None]:
    row = await conn.fetchrow(
        """
        SELECT count(*) AS n,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY s) AS p95,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS p99,
               max(s) AS max,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY decide) AS p99_to_decision,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY s - decide) AS p99_decision_to_app
        FROM (SELECT extract(epoch FROM coalesce(nd.delivered_at, nd.sent_at) - o.detected_at)
                         AS s,
                     extract(epoch FROM o.decided_at - o.detected_at) AS decide
              FROM offers o
              JOIN notifications n
                ON n.customer_id = o.customer_id AND n.subject = 'offer:' || o.id
              JOIN notification_deliveries nd ON nd.notification_id = n.id AND nd.channel = 'app'
              WHERE o.kind = ANY($1::text[])) x
        """,
        sorted(kind.value for kind in STREAM_KINDS),
    )
    return {
        k: (None if row[k] is None else round(float(row[k]), 3))
        for k in ("n", "p50", "p95", "p99", "max", "p99_to_decision", "p99_decision_to_app")
    }


async def run_offers_eval(options: OffersEvalOptions, progress: TextIO) -> dict[str, Any]:
    if options.vehicles < 1 or options.days <= 0:
        raise ValueError("need at least one vehicle and a positive number of days")
    now_ms = time.time_ns() // 1_000_000
    end_ms = now_ms - now_ms % 60_000
    start_ms = end_ms - round(options.days * DAY_MS)
    retention_days = int(options.days) + 2
    hooks = OffersEval(options, start_ms, end_ms)
    with tempfile.TemporaryDirectory(prefix="fleetlink-offers-eval-"):
        bench = SimulateBenchOptions(
            vehicles=options.vehicles,
            seconds=0,
            seed=options.seed,
            broker=options.broker,
            drain_timeout_s=3600,
            simulator_timeout_s=max(
                SIMULATOR_MIN_TIMEOUT_S,
                options.vehicles * options.days * SIMULATOR_S_PER_VEHICLE_DAY,
                2 * options.days * DAY_MS / 1000 / (options.speedup or math.inf),
            ),
            extra_args=(
                f"--days={options.days}",
                f"--start={start_ms}",
                f"--retention-days={retention_days}",
                *((f"--speedup={options.speedup}",) if options.speedup else ()),
            ),
            ingest=IngestSettings(retention_days=retention_days),
        )
        figures = await run_simulate_bench(bench, progress, hooks)
    figures["seed"] = options.seed
    figures["days"] = options.days
    figures["speedup"] = options.speedup
    return figures


def format_offers_result(figures: dict[str, Any]) -> str:
    offers = figures["offers"]
    pace = figures.get("speedup")
    lines = [
        f"offers eval: {figures['vehicles']} vehicles x {figures['days']:g} day(s)"
        f" ({'unpaced' if not pace else f'at most {pace:g}x real time'}), seed "
        f"{figures['seed']}; {figures['stored_samples']:,} samples stored (lost "
        f"{figures['lost_samples']:,}); engine: {offers['engine']['triggers']:,} triggers, "
        f"{offers['engine']['geofence_events']:,} geofence events, "
        f"{offers['engine']['dropped_batches']} batches dropped",
        "",
        "| rule | campaign | eligible | suppressed (by reason) | sent | opened | clicked |"
        " redeemed | conversion |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in offers["kpis"]:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(k["suppressed"].items())) or "-"
        conversion = "-" if k["conversion_rate"] is None else f"{k['conversion_rate']:.3f}"
        lines.append(
            f"| {k['rule_id']} | {k['campaign']} | {k['eligible']} | {reasons} | {k['sent']} |"
            f" {k['opened']} | {k['clicked']} | {k['redeemed']} | {conversion} |"
        )
    latency = offers["trigger_to_delivery_s"]
    lines += [
        "",
        "audit (all must be 0): " + ", ".join(f"{name} {n}" for name, n in offers["audit"].items()),
        f"trigger to delivery (location offers, {latency['n']:.0f}): p50 {latency['p50']} s, "
        f"p95 {latency['p95']} s, p99 {latency['p99']} s, max {latency['max']} s (p99 to the"
        f" decision {latency['p99_to_decision']} s, decision to app"
        f" {latency['p99_decision_to_app']} s)",
    ]
    return "\n".join(lines)
