"""The stream engine at run time: ingest hands over each committed batch; the rules evaluate it
and the alert store applies what they conclude.

The hand-off is a bounded queue: ingest never waits for diagnostics. When the queue is full the
batch is dropped for diagnostics only (the telemetry is stored), counted and logged; the trend
engine still sees the data the next day. Alert writes that fail (database down) are retried
with backoff until they succeed or the service stops, so a conclusion is not lost to a blip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from diagnostics.alert_store import AlertStore
from diagnostics.findings import AlertType, Clearance, Finding
from diagnostics.lifecycle import Source
from diagnostics.stream_input import DtcEvent, Sample
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms

log = logging.getLogger(__name__)

# The database is (briefly) unreachable: retry.
DATABASE_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)

DEFAULT_QUEUE_BATCHES = 1_000
RETRY_MAX_BACKOFF_S = 10.0
EVICT_INTERVAL_S = 300.0


class RuleOutcome(Protocol):
    @property
    def findings(self) -> Sequence[Finding]: ...
    @property
    def clearances(self) -> Sequence[Clearance]: ...


class Rules(Protocol):
    def evaluate(self, samples: Sequence[Sample], dtcs: Sequence[DtcEvent]) -> RuleOutcome: ...

    def evict_idle(self, now_ms: int | None = None) -> list[str]: ...

    def restore_open(self, keys: Iterable[tuple[str, AlertType, str]], now_ms: int) -> None: ...


@dataclass
class StreamStats:
    batches: int = 0
    samples: int = 0
    dropped_batches: int = 0
    findings: int = 0
    clearances: int = 0
    alert_changes: int = 0
    write_failures: int = 0


class StreamDiagnostics:
    def __init__(
        self,
        store: AlertStore,
        rules: Rules,
        *,
        clock: Clock = SYSTEM_CLOCK,
        queue_batches: int = DEFAULT_QUEUE_BATCHES,
        backfill: bool = False,
    ) -> None:
        """``backfill``: the data is days old (the evaluation): idle vehicles are evicted by
        the stream's own time, not the wall clock."""
        self._backfill = backfill
        self._store = store
        self._rules = rules
        self._clock = clock
        self._queue: asyncio.Queue[tuple[list[Sample], list[DtcEvent]]] = asyncio.Queue(
            queue_batches
        )
        self.stats = StreamStats()

    def submit(self, samples: list[Sample], dtcs: list[DtcEvent]) -> bool:
        """Hand over one committed batch without waiting; False when it had to be dropped."""
        if not samples and not dtcs:
            return True
        try:
            self._queue.put_nowait((samples, dtcs))
        except asyncio.QueueFull:
            self.stats.dropped_batches += 1
            if self.stats.dropped_batches in (1, 10, 100) or self.stats.dropped_batches % 1000 == 0:
                log.warning(
                    "diagnostics: stream queue full; %d batches skipped by the stream rules so far"
                    " (stored all the same)",
                    self.stats.dropped_batches,
                )
            return False
        return True

    async def restore(self) -> int:
        """Re-arm the rules with the open alerts the stream engine raised before a restart, so
        that they clear when the evidence goes away. Returns how many."""
        keys = await self._store.active_keys(Source.STREAM)
        self._rules.restore_open(
            [(vin, AlertType(kind), component) for vin, kind, component in keys],
            self._clock.now_ms(),
        )
        return len(keys)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_eviction = loop.time() + EVICT_INTERVAL_S
        while not stop.is_set() or not self._queue.empty():
            if loop.time() >= next_eviction:
                self._rules.evict_idle(None if self._backfill else self._clock.now_ms())
                next_eviction = loop.time() + EVICT_INTERVAL_S
            try:
                samples, dtcs = await asyncio.wait_for(self._queue.get(), 0.5)
            except TimeoutError:
                continue
            await self.process(samples, dtcs, stop)

    async def process(
        self, samples: list[Sample], dtcs: list[DtcEvent], stop: asyncio.Event | None = None
    ) -> None:
        outcome = self._rules.evaluate(samples, dtcs)
        self.stats.batches += 1
        self.stats.samples += len(samples)
        self.stats.findings += len(outcome.findings)
        self.stats.clearances += len(outcome.clearances)
        if not outcome.findings and not outcome.clearances:
            return
        backoff_s = 0.2
        while True:
            try:
                changes = await self._store.apply(
                    Source.STREAM,
                    outcome.findings,
                    outcome.clearances,
                    now=utc_from_ms(self._clock.now_ms()),
                )
            except DATABASE_UNAVAILABLE as exc:
                self._failed(exc)
            except asyncpg.PostgresError:
                # The database refused the write itself (a bug, not an outage): retrying would
                # loop forever. Logged with the findings; the next batch is evaluated afresh.
                self.stats.write_failures += 1
                log.exception("diagnostics: alerts refused by the database: %s", outcome.findings)
                return
            else:
                self.stats.alert_changes += changes.count
                return
            if stop is not None and stop.is_set():
                log.error("diagnostics: stopping with %d findings unwritten", len(outcome.findings))
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait() if stop else asyncio.sleep(backoff_s), backoff_s)
            backoff_s = min(backoff_s * 2, RETRY_MAX_BACKOFF_S)

    def _failed(self, exc: Exception) -> None:
        self.stats.write_failures += 1
        log.warning("diagnostics: writing alerts failed (%s); retrying", exc)
