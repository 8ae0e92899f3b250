"""The offers engine at run time, beside the stream rules: ingest hands over each committed
batch, the trigger engine evaluates it, and every trigger is appended to the outbox
(``offer.triggered``) for the ``offers`` consumer to decide on.

The hand-off is a bounded queue (ingest never waits; a full queue skips the batch for offers
only, counted and logged). Triggers are written with retries, so a database blip loses none.
Rules and places are reloaded when an administrator changes them (``NOTIFY offer_config``, with
a polling backstop), and the cars with an open maintenance alert are refreshed periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from diagnostics.offers.config_store import load_places, load_rules
from diagnostics.offers.geo import Geofence
from diagnostics.offers.geo_index import GeofenceIndex
from diagnostics.offers.rules import OfferRule
from diagnostics.offers.topics import OFFER_TRIGGERED
from diagnostics.offers.triggers import Trigger, TriggerEngine
from diagnostics.outbox import append
from diagnostics.stream_input import Sample
from diagnostics.stream_service import DATABASE_UNAVAILABLE, RETRY_MAX_BACKOFF_S
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms

log = logging.getLogger(__name__)

CONFIG_CHANNEL = "offer_config"
DEFAULT_QUEUE_BATCHES = 1_000
CONFIG_POLL_S = 30.0
ALERTING_REFRESH_S = 60.0

#: Maintenance alerts that make a service booking offer relevant (not DTC noise).
_ALERTING = "SELECT DISTINCT vin FROM alerts WHERE status <> 'resolved' AND type <> 'dtc'"


@dataclass
class OfferStreamStats:
    batches: int = 0
    samples: int = 0
    dropped_batches: int = 0
    triggers: int = 0
    geofence_events: int = 0
    write_failures: int = 0


class OfferStream:
    def __init__(
        self,
        pool: asyncpg.Pool,
        engine: TriggerEngine,
        *,
        clock: Clock = SYSTEM_CLOCK,
        queue_batches: int = DEFAULT_QUEUE_BATCHES,
    ) -> None:
        self._pool = pool
        self._engine = engine
        self._clock = clock
        self._queue: asyncio.Queue[tuple[list[Sample], float]] = asyncio.Queue(queue_batches)
        self._config_changed = asyncio.Event()
        self._busy = False
        self._rules: list[OfferRule] | None = None
        self._places: list[Geofence] | None = None
        self.stats = OfferStreamStats()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being evaluated or written."""
        return self._queue.empty() and not self._busy

    def submit(self, samples: list[Sample]) -> bool:
        """Hand over one committed batch without waiting; False when it had to be dropped. The
        hand-off's wall time is kept: it is when the backend first knew of the data."""
        if not samples:
            return True
        try:
            self._queue.put_nowait((samples, self._clock.now_ms() / 1000))
        except asyncio.QueueFull:
            self.stats.dropped_batches += 1
            if self.stats.dropped_batches in (1, 10, 100) or self.stats.dropped_batches % 1000 == 0:
                log.warning(
                    "offers: queue full; %d batches skipped by the offers engine so far",
                    self.stats.dropped_batches,
                )
            return False
        return True

    async def reload(self) -> None:
        """Apply changed rules or places. Unchanged ones are left alone: a new index would
        restart every car's geofence visits (no dwell could ever complete under the polling
        backstop) and rebuilding it costs the event loop time."""
        async with self._pool.acquire() as conn:
            rules, places = await load_rules(conn), await load_places(conn)
        if rules == self._rules and places == self._places:
            return
        index = self._engine.index if places == self._places else GeofenceIndex(places)
        self._engine.configure(rules, index)
        self._rules, self._places = rules, places
        log.info("offers: %d rules and %d places loaded", len(rules), len(places))

    async def refresh_alerting(self) -> None:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_ALERTING)
        self._engine.set_alerting(r["vin"] for r in rows)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        listener = await self._listen()
        self._config_changed.set()  # load rules and places before the first batch
        next_config = loop.time() + CONFIG_POLL_S
        next_alerting = loop.time()
        try:
            while not stop.is_set() or not self._queue.empty():
                now = loop.time()
                if self._config_changed.is_set() or now >= next_config:
                    self._config_changed.clear()
                    next_config = now + CONFIG_POLL_S
                    await self._quietly(self.reload())
                if now >= next_alerting:
                    next_alerting = now + ALERTING_REFRESH_S
                    await self._quietly(self.refresh_alerting())
                try:
                    samples, seen_at = await asyncio.wait_for(self._queue.get(), 0.5)
                except TimeoutError:
                    continue
                self._busy = True
                try:
                    await self.process(samples, seen_at, stop)
                finally:
                    self._busy = False
        finally:
            if listener is not None:
                with contextlib.suppress(*DATABASE_UNAVAILABLE):
                    await listener.remove_listener(CONFIG_CHANNEL, self._on_config)
                await self._pool.release(listener)

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            conn: asyncpg.Connection = await self._pool.acquire()
        except DATABASE_UNAVAILABLE as exc:
            log.warning("offers: no LISTEN %s (%s); polling for rule changes", CONFIG_CHANNEL, exc)
            return None
        try:
            await conn.add_listener(CONFIG_CHANNEL, self._on_config)
        except DATABASE_UNAVAILABLE as exc:
            await self._pool.release(conn)
            log.warning("offers: no LISTEN %s (%s); polling for rule changes", CONFIG_CHANNEL, exc)
            return None
        return conn

    def _on_config(self, *_: object) -> None:
        self._config_changed.set()

    async def _quietly(self, work: Coroutine[Any, Any, None]) -> None:
        """A refresh that fails (database down, a stored rule this version cannot read) is
        logged and tried again later: the engine keeps running on what it has."""
        try:
            await work
        except DATABASE_UNAVAILABLE as exc:
            log.warning("offers: refresh failed (%s); next time", exc)
        except Exception:
            log.exception("offers: refresh failed; next time")

    async def process(
        self, samples: Sequence[Sample], seen_at: float, stop: asyncio.Event | None = None
    ) -> list[Trigger]:
        outcome = self._engine.evaluate(samples)
        self.stats.batches += 1
        self.stats.samples += len(samples)
        self.stats.geofence_events += len(outcome.events)
        if not outcome.triggers:
            return []
        backoff_s = 0.2
        while True:
            try:
                await self._write(outcome.triggers, seen_at)
            except DATABASE_UNAVAILABLE as exc:
                self.stats.write_failures += 1
                log.warning("offers: writing triggers failed (%s); retrying", exc)
            except asyncpg.PostgresError:
                self.stats.write_failures += 1
                log.exception("offers: triggers refused by the database: %s", outcome.triggers)
                return []
            else:
                self.stats.triggers += len(outcome.triggers)
                return outcome.triggers
            if stop is not None and stop.is_set():
                log.error("offers: stopping with %d triggers unwritten", len(outcome.triggers))
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait() if stop else asyncio.sleep(backoff_s), backoff_s)
            backoff_s = min(backoff_s * 2, RETRY_MAX_BACKOFF_S)

    async def _write(self, triggers: Sequence[Trigger], seen_at: float) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            for trigger in triggers:
                await append_trigger(conn, trigger, detected_at_ms=round(seen_at * 1000))


async def append_trigger(conn: asyncpg.Connection, trigger: Trigger, *, detected_at_ms: int) -> int:
    """One ``offer.triggered`` event, in ``conn``'s transaction."""
    return await append(
        conn,
        OFFER_TRIGGERED,
        f"offer-rule:{trigger.rule_id}",
        {
            "rule_id": trigger.rule_id,
            "rule_version": trigger.rule_version,
            "subject_key": trigger.subject_key,
            "place_id": trigger.place_id,
            "speed_kmh": trigger.speed_kmh,
            "triggered_at_ms": trigger.ts_ms,
            "detected_at_ms": detected_at_ms,
            "details": dict(trigger.details),
        },
        occurred_at=utc_from_ms(trigger.ts_ms),
        vin=trigger.vin,
    )
