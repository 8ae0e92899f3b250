"""``fleetlink eval diagnostics``: score the alerts against the simulator's ground truth.

Diagnostics run as in production, through the whole pipeline:

1. The simulate benchmark's stack (``bench.simulate_scale``): embedded PostgreSQL, a broker
   (Mosquitto when installed), the real ingest worker, and ``fleetlink simulate --days D
   --faults default --seed S --ground-truth FILE`` as its own process, backfilling D days of
   telemetry through MQTT.
2. The stream engine gets every committed ingest batch (the same hand-off as ``fleetlink up``)
   and writes its alerts while the backfill runs.
3. When every sample is stored, the trend engine runs once per simulated day, as of the end of
   that day (``TrendDiagnostics.pass_at``: the production pass with time passed in; it reads
   only data up to that day).
4. Alerts (``detected_at`` is the sample time of the data that raised them) are scored per
   type against the ground truth (``diagnostics.scoring``); a PNG chart shows the lead times.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from bench.ingest import BrokerChoice
from bench.simulate_scale import SimulateBenchOptions, run_simulate_bench
from diagnostics.alert_store import AlertStore
from diagnostics.findings import GRADUAL_TYPES
from diagnostics.rule_settings import RuleSettings
from diagnostics.scoring import Scorecard, ScoredAlert, TruthFault, as_json, score
from diagnostics.settings import TrendSettings
from diagnostics.stream_rules import StreamRules
from diagnostics.stream_service import StreamDiagnostics
from diagnostics.trend_service import TrendDiagnostics
from fleetlink.diagnostics_feed import DiagnosticsFeed
from ingest.settings import IngestSettings
from ingest.store import Batch
from simulator.ground_truth import GroundTruthRecord, read_ground_truth

SCORED_TYPES = tuple(sorted(t.value for t in GRADUAL_TYPES))
DAY_MS = 86_400_000
STREAM_DRAIN_TIMEOUT_S = 600.0
# The backfill's pace on this 2-core machine is about 2,300 samples/s; a generous bound.
SIMULATOR_S_PER_VEHICLE_DAY = 1.5
SIMULATOR_MIN_TIMEOUT_S = 600.0
# Sample time past a day's end before its trend pass runs: cars' buffered messages arrive late.
DAY_DONE_MARGIN_MS = 3 * 3_600_000


@dataclass(frozen=True)
class EvalOptions:
    vehicles: int = 300
    days: float = 60.0
    seed: int = 11
    broker: BrokerChoice = "auto"
    chart: Path | None = None
    start_ms: int = field(default_factory=lambda: 0)  # 0: `days` before now


def truth_faults(records: list[GroundTruthRecord]) -> list[TruthFault]:
    onsets: dict[tuple[str, str, str], datetime] = {}
    failures: dict[tuple[str, str, str], datetime] = {}
    for r in records:
        key = (r.vin, r.fault, r.component)
        moment = datetime.fromtimestamp(r.ts_ms / 1000, UTC)
        if r.event == "onset":
            onsets[key] = moment
        elif r.event == "failure":
            failures.setdefault(key, moment)
    return [
        TruthFault(vin, fault, component, onset, failures.get((vin, fault, component)))
        for (vin, fault, component), onset in sorted(onsets.items())
    ]


async def stored_alerts(conn: asyncpg.Connection) -> list[ScoredAlert]:
    rows = await conn.fetch("SELECT id, vin, type, component, detected_at FROM alerts")
    return [
        ScoredAlert(r["id"], r["vin"], r["type"], r["component"], r["detected_at"]) for r in rows
    ]


class DiagnosticsEval:
    """The hooks around the simulate benchmark (``bench.simulate_scale.BenchHooks``).

    The trend pass of each simulated day runs as soon as the backfill has moved past that day
    (plus a margin for buffered messages), while the stream rules keep reading the batches: the
    two engines meet the data in the same order as in production. (Running every trend pass
    after the whole backfill would let the stream rules open, at the failure itself, the alerts
    the trend had predicted days before, and the earlier detection would be lost.)"""

    def __init__(self, options: EvalOptions, ground_truth: Path, start_ms: int, end_ms: int):
        self._options = options
        self._ground_truth = ground_truth
        self._start_ms = start_ms
        self._end_ms = end_ms
        self._stop = asyncio.Event()
        self._stream: StreamDiagnostics | None = None
        self._task: asyncio.Task[None] | None = None
        self._follower: asyncio.Task[None] | None = None
        self._days = _days(start_ms, end_ms)
        self._next_day = 0  # index into _days of the next trend pass
        self._newest_ms = 0  # newest sample time ingest has committed
        self._trend_s = 0.0
        self.scorecard: Scorecard | None = None

    async def start(self, pool: asyncpg.Pool) -> Callable[[Batch], None] | None:
        self._store = AlertStore(pool)
        self._trend = TrendDiagnostics(pool, self._store, TrendSettings())
        # Room for the whole backfill's batches: the stream rules must see every sample here.
        self._stream = StreamDiagnostics(
            self._store, StreamRules(RuleSettings()), queue_batches=1_000_000, backfill=True
        )
        self._task = asyncio.create_task(self._stream.run(self._stop))
        self._follower = asyncio.create_task(self._follow_backfill())
        feed = DiagnosticsFeed(self._stream)

        def on_commit(batch: Batch) -> None:
            if batch.max_ts_ms is not None and batch.max_ts_ms > self._newest_ms:
                self._newest_ms = batch.max_ts_ms
            feed(batch)

        return on_commit

    async def _follow_backfill(self) -> None:
        while not self._stop.is_set() and self._next_day < len(self._days):
            if self._newest_ms >= _end_of_day_ms(self._days[self._next_day]) + DAY_DONE_MARGIN_MS:
                await self._pass_next_day()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 0.5)

    async def _pass_next_day(self) -> None:
        started = time.monotonic()
        day = self._days[self._next_day]
        # The day before again too: data buffered past the margin completes it.
        await self._trend.refresh([day - timedelta(days=1), day])
        as_of = min(
            datetime.fromtimestamp(_end_of_day_ms(day) / 1000, UTC),
            datetime.fromtimestamp(self._end_ms / 1000, UTC),
        )
        await self._trend.pass_at(as_of, refresh=False)
        self._next_day += 1
        self._trend_s += time.monotonic() - started

    async def finish(
        self, pool: asyncpg.Pool, figures: dict[str, Any], say: Callable[[str], None]
    ) -> None:
        assert self._stream is not None and self._task is not None
        assert self._follower is not None
        self._stop.set()
        await self._follower
        say("eval: waiting for the stream rules to finish the backfill's batches")
        await asyncio.wait_for(self._task, STREAM_DRAIN_TIMEOUT_S)
        stream = self._stream.stats
        during = self._next_day
        while self._next_day < len(self._days):  # the last days, now that all is stored
            await self._pass_next_day()
        say(f"eval: {len(self._days)} trend passes ({during} while the backfill ran)")
        async with pool.acquire() as conn:
            alerts = await stored_alerts(conn)
        faults = truth_faults(read_ground_truth(self._ground_truth))
        days = (self._end_ms - self._start_ms) / DAY_MS
        self.scorecard = score(
            faults, alerts, types=SCORED_TYPES, vehicles=self._options.vehicles, days=days
        )
        figures["diagnostics"] = as_json(self.scorecard) | {
            "stream_batches": stream.batches,
            "stream_dropped_batches": stream.dropped_batches,
            "stream_findings": stream.findings,
            "trend_passes": len(self._days),
            "trend_passes_during_backfill": during,
            "trend_seconds": round(self._trend_s, 1),
            "alerts_by_type": _count_types(alerts),
        }


def _end_of_day_ms(day: date) -> int:
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return int(midnight.timestamp() * 1000)


def _days(start_ms: int, end_ms: int) -> list[date]:
    first = datetime.fromtimestamp(start_ms / 1000, UTC).date()
    last = datetime.fromtimestamp((end_ms - 1) / 1000, UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _count_types(alerts: list[ScoredAlert]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert.type] = counts.get(alert.type, 0) + 1
    return dict(sorted(counts.items()))


async def run_diagnostics_eval(options: EvalOptions, progress: TextIO) -> dict[str, Any]:
    if options.vehicles < 1 or options.days <= 0:
        raise ValueError("need at least one vehicle and a positive number of days")
    now_ms = time.time_ns() // 1_000_000
    # Whole minutes, and an hour inside ingest's retention so no early sample is refused.
    end_ms = now_ms - now_ms % 60_000
    start_ms = options.start_ms or end_ms - round(options.days * DAY_MS)
    retention_days = int(options.days) + 2
    with tempfile.TemporaryDirectory(prefix="fleetlink-eval-") as tmp:
        ground_truth = Path(tmp) / "ground-truth.jsonl"
        hooks = DiagnosticsEval(options, ground_truth, start_ms, end_ms)
        bench = SimulateBenchOptions(
            vehicles=options.vehicles,
            seconds=0,
            seed=options.seed,
            broker=options.broker,
            drain_timeout_s=3600,
            simulator_timeout_s=max(
                SIMULATOR_MIN_TIMEOUT_S,
                options.vehicles * options.days * SIMULATOR_S_PER_VEHICLE_DAY,
            ),
            extra_args=(
                f"--days={options.days}",
                f"--start={start_ms}",
                f"--retention-days={retention_days}",
                "--faults=default",
                f"--ground-truth={ground_truth}",
            ),
            ingest=IngestSettings(retention_days=retention_days),
        )
        figures = await run_simulate_bench(bench, progress, hooks)
        if options.chart is not None and hooks.scorecard is not None:
            from bench.lead_chart import write_lead_chart

            write_lead_chart(hooks.scorecard, options.chart, title=_title(options))
            figures["chart"] = str(options.chart)
    figures["seed"] = options.seed
    figures["days"] = options.days
    return figures


def _title(options: EvalOptions) -> str:
    return (
        f"FleetLink diagnostics: lead time per alert type "
        f"({options.vehicles} vehicles x {options.days:g} days, seed {options.seed})"
    )
