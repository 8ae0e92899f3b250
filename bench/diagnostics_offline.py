"""Offline tuning bench of the trend models: simulator -> store -> daily features -> assess.

``python -m bench.diagnostics_offline --vehicles 100 --days 60 --seed 11`` runs the simulated
fleet in this process (the same cars, fault plan and sampling as a ``fleetlink simulate --days``
backfill: :func:`simulator.faults.plan_faults`, the runner's tick grid and per-car random
streams), writes every sample into an embedded PostgreSQL through ingest's own
:class:`~ingest.store.TelemetryStore`, refreshes each UTC day's features when the simulated day
ends, and then runs :func:`diagnostics.trend_engine.assess_fleet` once per simulated day with
``now`` = the end of that day, as production does. The alerts are scored against the
simulator's ground truth (:mod:`bench.diagnostics_scoring`). No MQTT: this is the fast loop for
tuning; ``fleetlink eval diagnostics`` is the end-to-end measurement.

With ``--data-dir`` the database is kept, keyed by (vehicles, days, seed, end date): a second run
with the same arguments skips the simulation and only re-scores (seconds), which is what tuning
the models needs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from diagnostics.features import load_features, refresh_daily_features
from diagnostics.findings import GRADUAL_TYPES, Clearance, Finding
from diagnostics.settings import TrendSettings
from diagnostics.trend_engine import assess_fleet
from fleetlink.embedded_postgres import EmbeddedPostgres, PostgresOptions
from fleetlink.migrations import migrate
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading
from simulator.faults import FaultSpec, plan_faults
from simulator.fleet import VehicleProfile, build_fleet
from simulator.ground_truth import GroundTruthRecord, GroundTruthWriter
from simulator.timeline import SamplingPolicy, Timeline
from simulator.vehicle_model import Phase, VehicleModel

MS_PER_DAY = 86_400_000
FLUSH_SAMPLES = 20_000  # samples per TelemetryStore.write (one transaction)
DONE_TABLE = "bench_offline_done"


Key = tuple[str, str, str]  # (vin, alert type, component)


# -- scoring ------------------------------------------------------------------------------------
#
# The definitions the end-to-end evaluation uses too:
# - an alert is an episode of one key (vin, type, component): opened by the first finding while
#   the key has no open alert, closed by a clearance;
# - an alert is correct if the vehicle has a fault of that type and component whose onset is at
#   or before the alert's time; otherwise it is a false alert;
# - precision per type: correct alerts / alerts; recall per type: faults that crossed their
#   failure threshold inside the window and got a correct alert / those faults;
# - lead time: failure time - time of the first correct alert, in days (negative: late);
# - false alerts per 1,000 vehicle-days: false alerts / (vehicles x days) x 1000.


@dataclass(frozen=True, slots=True)
class FaultTruth:
    vin: str
    fault: str
    component: str
    onset_ms: int
    failure_ms: int | None  # None: did not cross its threshold inside the window

    @property
    def key(self) -> Key:
        return (self.vin, self.fault, self.component)


def truth_from_records(records: Iterable[GroundTruthRecord]) -> list[FaultTruth]:
    onsets: dict[Key, int] = {}
    failures: dict[Key, int] = {}
    for record in records:
        key = (record.vin, record.fault, record.component)
        target = onsets if record.event == "onset" else failures
        target.setdefault(key, record.ts_ms)
    return [FaultTruth(*key, onset, failures.get(key)) for key, onset in sorted(onsets.items())]


def load_truth(path: Path) -> list[FaultTruth]:
    with path.open(encoding="utf-8") as lines:
        return truth_from_records(
            GroundTruthRecord.from_json(line) for line in lines if line.strip()
        )


@dataclass(slots=True)
class _Episode:
    key: Key
    opened_at: datetime
    correct: bool


@dataclass
class Scorer:
    truth: Sequence[FaultTruth]
    vehicles: int
    days: int
    episodes: list[_Episode] = field(default_factory=list)
    _open: dict[Key, _Episode] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._faults = {fault.key: fault for fault in self.truth}

    def observe(
        self, now: datetime, findings: Sequence[Finding], clearances: Sequence[Clearance]
    ) -> None:
        """One assessment's output at ``now`` (the time an alert would be raised)."""
        for finding in findings:
            key = (finding.vin, finding.type.value, finding.component)
            if key in self._open:
                continue
            fault = self._faults.get(key)
            correct = fault is not None and fault.onset_ms <= now.timestamp() * 1000
            episode = _Episode(key, now, correct)
            self._open[key] = episode
            self.episodes.append(episode)
        for clearance in clearances:
            self._open.pop((clearance.vin, clearance.type.value, clearance.component), None)

    def report(self) -> dict[str, Any]:
        vehicle_days = self.vehicles * self.days
        types: dict[str, Any] = {}
        false_total = 0
        for alert_type in sorted(GRADUAL_TYPES):
            name = alert_type.value
            episodes = [e for e in self.episodes if e.key[1] == name]
            correct = [e for e in episodes if e.correct]
            false = len(episodes) - len(correct)
            false_total += false
            first: dict[Key, datetime] = {}
            for episode in correct:
                first.setdefault(episode.key, episode.opened_at)
            failed = [f for f in self.truth if f.fault == name and f.failure_ms is not None]
            leads = sorted(
                (f.failure_ms - first[f.key].timestamp() * 1000) / MS_PER_DAY
                for f in failed
                if f.key in first and f.failure_ms is not None
            )
            types[name] = {
                "faults": sum(1 for f in self.truth if f.fault == name),
                "failed_in_window": len(failed),
                "alerts": len(episodes),
                "false_alerts": false,
                "precision": len(correct) / len(episodes) if episodes else None,
                "recall": len(leads) / len(failed) if failed else None,
                "late": sum(1 for lead in leads if lead < 0),
                "lead_median_days": statistics.median(leads) if leads else None,
                "lead_p10_days": _percentile(leads, 0.10) if leads else None,
                "false_per_1000_vehicle_days": 1000.0 * false / vehicle_days,
                "missed": [list(f.key) for f in failed if f.key not in first],
                "false": [
                    [*e.key, e.opened_at.date().isoformat()] for e in episodes if not e.correct
                ],
            }
        return {
            "types": types,
            "false_alerts": false_total,
            "false_per_1000_vehicle_days": 1000.0 * false_total / vehicle_days,
        }


def _percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), of sorted ``values``."""
    position = (len(values) - 1) * q
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def format_table(report: dict[str, Any]) -> str:
    def show(value: float | None, pattern: str) -> str:
        return "-" if value is None else format(value, pattern)

    lines = [
        f"{'type':<33} {'faults':>6} {'failed':>6} {'alerts':>6} {'precision':>9} "
        f"{'recall':>6} {'lead med':>8} {'lead p10':>8} {'false/1k vd':>11}"
    ]
    for name, row in report["types"].items():
        lines.append(
            f"{name:<33} {row['faults']:>6} {row['failed_in_window']:>6} {row['alerts']:>6} "
            f"{show(row['precision'], '.3f'):>9} {show(row['recall'], '.3f'):>6} "
            f"{show(row['lead_median_days'], '.1f'):>8} {show(row['lead_p10_days'], '.1f'):>8} "
            f"{row['false_per_1000_vehicle_days']:>11.3f}"
        )
    lines.append(
        f"all types: {report['false_alerts']} false alerts, "
        f"{report['false_per_1000_vehicle_days']:.3f} per 1,000 vehicle-days"
    )
    run = report.get("run")
    if run:
        lines.append(
            f"run: {run['vehicles']} vehicles x {run['days']} days, seed {run['seed']}, "
            f"{run['start']}..{run['end']}; assess {report['assess_seconds_total']:.2f} s total"
        )
    return "\n".join(lines)


# -- simulation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfflineOptions:
    vehicles: int = 100
    days: int = 60
    seed: int = 11
    end: date | None = None  # last simulated day (UTC); default: yesterday
    data_dir: Path | None = None  # keep the simulated database here for re-scoring


@dataclass(slots=True)
class _Car:
    vin: str
    model: VehicleModel
    next_step_ms: int
    last_sample_ms: int | None = None
    driving: bool = False


def _readings(ts_ms: int, signals: dict[str, bool | int | float | str]) -> list[Reading]:
    # What validation hands the store: numbers (booleans as 0/1) in value, text in text.
    out = []
    for name, value in signals.items():
        if isinstance(value, str):
            out.append(Reading(name, ts_ms, None, value))
        else:
            out.append(Reading(name, ts_ms, float(value), None))
    return out


class FleetSimulation:
    """The fleet runner's tick loop (simulator/runner.py) without MQTT: the same tick grid, the
    same rule for when a car is stepped and sampled, the same random streams per car."""

    def __init__(
        self,
        profiles: Sequence[VehicleProfile],
        plan: Sequence[FaultSpec],
        *,
        seed: int,
        start_ms: int,
        sampling: SamplingPolicy,
    ) -> None:
        self.sampling = sampling
        self.cars = [
            _Car(
                str(p.vin),
                VehicleModel(
                    p,
                    random.Random(f"{seed}:{index}:{p.vin}"),
                    start_ms,
                    faults=plan,
                    max_substep_s=sampling.max_substep_s,
                ),
                next_step_ms=start_ms,
            )
            for index, p in enumerate(profiles)
        ]
        self.sim_ms = start_ms
        self.samples = 0

    def run_until(
        self,
        end_ms: int,
        batch: Batch,
        truth: GroundTruthWriter,
        flush: Callable[[], None],
    ) -> None:
        """Tick up to (excluding) ``end_ms``, adding samples to ``batch``; ``flush`` is called
        whenever the batch is big enough."""
        policy = self.sampling
        while self.sim_ms < end_ms:
            now = self.sim_ms
            for car in self.cars:
                if now < car.next_step_ms:
                    continue
                model = car.model
                model.step(now)
                driving = model.phase is Phase.DRIVING
                model.drain_events()
                records = model.drain_ground_truth()
                if records:
                    truth.write(records)
                last = car.last_sample_ms
                if (
                    driving
                    or driving != car.driving
                    or last is None
                    or now - last >= (policy.parked_ms)
                ):
                    batch.add_readings(car.vin, _readings(now, model.read_signals()))
                    car.last_sample_ms = now
                    self.samples += 1
                car.driving = driving
                if driving:
                    car.next_step_ms = now + policy.driving_ms
                else:
                    departs = model.next_departure_ms
                    if departs is None:
                        car.next_step_ms = now + policy.parked_poll_ms
                    else:
                        last_ms = car.last_sample_ms if car.last_sample_ms is not None else now
                        car.next_step_ms = max(min(last_ms + policy.parked_ms, departs), now + 1)
            if len(batch.wide) >= FLUSH_SAMPLES:
                flush()
            self.sim_ms += policy.driving_ms


def _db_name(options: OfflineOptions, end: date) -> str:
    return f"dx_{options.vehicles}_{options.days}_{options.seed}_{end:%Y%m%d}"


async def _prepare_database(server: EmbeddedPostgres, name: str) -> bool:
    """Create (and migrate) the run's database; True if it already holds a finished run."""
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(server.dsn(name))
    try:
        await migrate(conn)
        return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", DONE_TABLE))
    finally:
        await conn.close()


async def simulate_into(
    pool: asyncpg.Pool,
    options: OfflineOptions,
    start: date,
    truth_path: Path,
    say: Callable[[str], None],
) -> None:
    """Simulate the fleet day by day into the store; refresh each day's features at its end."""
    start_ms = int(datetime.combine(start, datetime.min.time(), UTC).timestamp() * 1000)
    profiles = build_fleet(options.vehicles, options.seed)
    plan = plan_faults(profiles, seed=options.seed, start_ms=start_ms, days=options.days)
    window_ms = options.days * MS_PER_DAY
    timeline = Timeline(start_ms=start_ms, wall_start_ms=start_ms + window_ms, speedup=None)
    simulation = FleetSimulation(
        profiles, plan, seed=options.seed, start_ms=start_ms, sampling=timeline.sampling()
    )
    store = TelemetryStore(pool)
    batch = Batch()
    pending: list[Batch] = []

    def flush() -> None:
        nonlocal batch
        pending.append(batch)
        batch = Batch()

    say(f"offline: {len(profiles)} cars, {len(plan)} faults planned, {options.days} days")
    started = time.monotonic()
    with GroundTruthWriter(truth_path) as truth:
        for index in range(options.days):
            day = start + timedelta(days=index)
            simulation.run_until(start_ms + (index + 1) * MS_PER_DAY, batch, truth, flush)
            flush()
            for full in pending:
                if full.wide:
                    await store.write(full)
            pending.clear()
            async with pool.acquire() as conn:
                vehicles = await refresh_daily_features(conn, day=day)
            say(
                f"offline: day {index + 1}/{options.days} {day}: {simulation.samples:,} samples,"
                f" features of {vehicles} cars, {time.monotonic() - started:.0f} s"
            )
    async with pool.acquire() as conn:
        await conn.execute(f"CREATE TABLE {DONE_TABLE} (finished_at timestamptz DEFAULT now())")


async def score_run(
    pool: asyncpg.Pool,
    options: OfflineOptions,
    start: date,
    truth: Sequence[FaultTruth],
    settings: TrendSettings,
) -> tuple[Scorer, float]:
    """Assess once per simulated day (now = the day's end) and score the alerts; returns the
    scorer and the seconds spent in load_features + assess_fleet."""
    scorer = Scorer(truth, vehicles=options.vehicles, days=options.days)
    spent = 0.0
    async with pool.acquire() as conn:
        for index in range(options.days):
            day = start + timedelta(days=index)
            now = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
            began = time.perf_counter()
            features = await load_features(conn, until=day, days=settings.trend_window_days)
            assessment = assess_fleet(features, now, settings)
            spent += time.perf_counter() - began
            scorer.observe(now, assessment.findings, assessment.clearances)
    return scorer, spent


async def run_offline(
    options: OfflineOptions, progress: TextIO, settings: TrendSettings | None = None
) -> dict[str, Any]:
    def say(text: str) -> None:
        progress.write(text + "\n")
        progress.flush()

    settings = settings or TrendSettings()
    end = options.end or (datetime.now(UTC).date() - timedelta(days=1))
    start = end - timedelta(days=options.days - 1)
    keep = options.data_dir is not None
    root = options.data_dir or Path(tempfile.mkdtemp(prefix="fleetlink-dx-offline-"))
    server = EmbeddedPostgres(root / "pg", PostgresOptions(fsync=False))
    name = _db_name(options, end)
    truth_path = root / f"{name}.groundtruth.jsonl"
    try:
        await asyncio.to_thread(server.start)
        finished = await _prepare_database(server, name)
        pool: asyncpg.Pool = await asyncpg.create_pool(server.dsn(name), min_size=1, max_size=2)
        try:
            if not finished:
                truth_path.unlink(missing_ok=True)
                await simulate_into(pool, options, start, truth_path, say)
            else:
                say(f"offline: reusing the simulated database {name}")
            truth = load_truth(truth_path)
            scorer, spent = await score_run(pool, options, start, truth, settings)
        finally:
            await pool.close()
    finally:
        await asyncio.to_thread(server.stop)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    report = scorer.report()
    report["assess_seconds_total"] = round(spent, 3)
    report["run"] = {
        "vehicles": options.vehicles,
        "days": options.days,
        "seed": options.seed,
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    return report


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.diagnostics_offline")
    parser.add_argument("--vehicles", type=int, default=100)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--end", type=date.fromisoformat, default=None, help="last day (UTC)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the database here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    options = OfflineOptions(args.vehicles, args.days, args.seed, args.end, args.data_dir)
    report = asyncio.run(run_offline(options, sys.stderr))
    print(json.dumps(report, indent=2) if args.json else format_table(report), file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
