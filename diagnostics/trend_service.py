"""The trend engine at run time: refresh the daily features, assess the fleet, apply.

A pass refreshes the features of the days that may have changed (today so far, and yesterday,
which late or buffered data can still complete), loads the model window for every vehicle and
hands the vectorised assessment to the alert store. ``fleetlink up`` and
``fleetlink serve diagnostics`` run a pass at start and then every ``trend_interval_s``; the
evaluation calls :meth:`TrendDiagnostics.pass_at` once per simulated day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from diagnostics.alert_store import AlertStore
from diagnostics.features import load_features, refresh_daily_features
from diagnostics.lifecycle import Source
from diagnostics.settings import TrendSettings
from diagnostics.trend_engine import assess_fleet
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 3600.0
RETRY_S = 60.0


@dataclass(frozen=True, slots=True)
class PassReport:
    now: datetime
    vehicles: int
    findings: int
    clearances: int
    opened: int
    updated: int
    resolved: int
    seconds: float


class TrendDiagnostics:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: AlertStore,
        settings: TrendSettings | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self._pool = pool
        self._store = store
        self._settings = settings or TrendSettings()
        self._clock = clock
        self._interval_s = interval_s
        self.last: PassReport | None = None

    async def refresh(self, days: list[date]) -> int:
        async with self._pool.acquire() as conn:
            return sum([await refresh_daily_features(conn, day=day) for day in days])

    async def pass_at(self, now: datetime, *, refresh: bool = True) -> PassReport:
        """One pass as of ``now``: the features of ``now``'s day and the day before are
        refreshed first unless ``refresh`` is False (the caller did it)."""
        started = time.perf_counter()
        today = now.date()
        if refresh:
            await self.refresh([today - timedelta(days=1), today])
        async with self._pool.acquire() as conn:
            features = await load_features(conn, until=today, days=self._settings.trend_window_days)
        assessment = assess_fleet(features, now, self._settings)
        changes = await self._store.apply(
            Source.TREND, assessment.findings, assessment.clearances, now=now
        )
        report = PassReport(
            now=now,
            vehicles=len(features.vins),
            findings=len(assessment.findings),
            clearances=len(assessment.clearances),
            opened=len(changes.opened),
            updated=len(changes.updated),
            resolved=len(changes.resolved),
            seconds=time.perf_counter() - started,
        )
        self.last = report
        return report

    async def run(self, stop: asyncio.Event) -> None:
        """A pass now, then one every interval, until ``stop``."""
        while not stop.is_set():
            wait_s = self._interval_s
            try:
                report = await self.pass_at(utc_from_ms(self._clock.now_ms()))
                log.info(
                    "diagnostics: trend pass over %d vehicles in %.1f s: %d findings, "
                    "%d opened, %d updated, %d resolved",
                    report.vehicles,
                    report.seconds,
                    report.findings,
                    report.opened,
                    report.updated,
                    report.resolved,
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("diagnostics: trend pass failed (%s); retrying in %.0f s", exc, RETRY_S)
                wait_s = min(wait_s, RETRY_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait_s)
