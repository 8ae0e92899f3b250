"""Diagnostics at run time: the stream engine fed by ingest, the periodic trend pass and the
outbox housekeeping, composed once for ``fleetlink up`` and the production roles."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from diagnostics.alert_store import AlertStore
from diagnostics.offers.geo_index import GeofenceIndex
from diagnostics.offers.stream_service import OfferStream
from diagnostics.offers.triggers import TriggerEngine
from diagnostics.outbox import prune
from diagnostics.rule_settings import RuleSettings
from diagnostics.settings import TrendSettings
from diagnostics.stream_rules import StreamRules
from diagnostics.stream_service import StreamDiagnostics
from diagnostics.trend_service import TrendDiagnostics
from fleetlink.diagnostics_feed import DiagnosticsFeed
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms

log = logging.getLogger(__name__)

OUTBOX_RETENTION = timedelta(days=14)
OUTBOX_PRUNE_INTERVAL_S = 3600.0


@dataclass
class Diagnostics:
    store: AlertStore
    stream: StreamDiagnostics
    trend: TrendDiagnostics
    #: The offers engine's stream side; it loads its rules and places when it starts running.
    offers: OfferStream

    @property
    def feed(self) -> DiagnosticsFeed:
        """Ingest's ``on_commit``."""
        return DiagnosticsFeed(self.stream, self.offers)


def build_diagnostics(
    pool: asyncpg.Pool, *, clock: Clock = SYSTEM_CLOCK, trend_interval_s: float | None = None
) -> Diagnostics:
    store = AlertStore(pool)
    trend_settings = TrendSettings()
    return Diagnostics(
        store=store,
        stream=StreamDiagnostics(store, StreamRules(RuleSettings()), clock=clock),
        trend=TrendDiagnostics(
            pool,
            store,
            trend_settings,
            clock=clock,
            **({"interval_s": trend_interval_s} if trend_interval_s else {}),
        ),
        offers=OfferStream(pool, TriggerEngine([], GeofenceIndex([])), clock=clock),
    )


async def prune_outbox_periodically(
    pool: asyncpg.Pool, stop: asyncio.Event, *, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Delete outbox events every consumer has passed, once they are two weeks old."""
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                deleted = await prune(
                    conn, older_than=utc_from_ms(clock.now_ms()) - OUTBOX_RETENTION
                )
            if deleted:
                log.info("outbox: pruned %d delivered events", deleted)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("outbox: pruning failed (%s); trying again later", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), OUTBOX_PRUNE_INTERVAL_S)
