"""``fleetlink bench diagnostics``: one trend pass over a big fleet, against its numpy kernels.

1. A fresh embedded PostgreSQL (fsync off), migrated.
2. Daily features for N vehicles x D days (default 10,000 x 30) synthesised with numpy (healthy
   wear with noise and gaps, ~1 % of the cars with a fault of each kind) and COPYed into
   ``vehicle_daily_features``.
3. Timed, ``--repeat`` times: a full pass as production runs it, ``load_features`` (the window
   out of PostgreSQL into arrays) + ``assess_fleet`` (models, findings, clearances); and, on the
   arrays already loaded, the same numpy kernels alone (``run_models``). Reported: the best and
   median of each, and pass / kernels, i.e. what loading and building findings cost on top.
4. Optional (``--refresh-vehicles N``): one day of synthetic sparse telemetry (15 s driving for
   an hour, 10 min parked) for N cars, and the time ``refresh_daily_features`` takes for it.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import numpy as np

from bench.ingest import create_bench_database
from diagnostics.features import (
    PAD_COLUMNS,
    SCALAR_COLUMNS,
    TIRE_COLUMNS,
    DailyFeatures,
    day_bounds,
    load_features,
    refresh_daily_features,
)
from diagnostics.settings import TrendSettings
from diagnostics.trend_engine import assess_fleet, run_models, window_start
from fleetlink.embedded_postgres import EmbeddedPostgres, PostgresOptions

FAULT_SHARE = 0.01  # per fault kind
END_DAY = date(2026, 1, 31)


@dataclass(frozen=True)
class DiagnosticsBenchOptions:
    vehicles: int = 10_000
    days: int = 30
    seed: int = 1
    repeat: int = 3
    refresh_vehicles: int = 0


def synthesise_features(vehicles: int, days: int, seed: int, end: date) -> DailyFeatures:
    """A fleet's daily features: healthy wear with noise and missing days, and about
    FAULT_SHARE of the cars with each kind of fault (so the models find something to do)."""
    rng = np.random.default_rng(seed)
    vins = [f"BENCH{i:012d}" for i in range(vehicles)]
    features = DailyFeatures.empty(vins, end - timedelta(days=days - 1), days)
    x = np.arange(days) + 0.5
    shape = (vehicles, days)

    def faulty() -> np.ndarray:
        return rng.random(vehicles) < FAULT_SHARE

    def gaps(values: np.ndarray, share: float) -> np.ndarray:
        return np.where(rng.random(values.shape) < share, np.nan, values)

    tire = rng.uniform(230.0, 250.0, (vehicles, 4, 1)) - 0.1 * x + rng.normal(0.0, 0.1, (1, 4, 1))
    leak = faulty()
    tire[leak, 0] -= rng.uniform(1.0, 6.0, (int(leak.sum()), 1)) * x
    features.tire_cold_kpa[:] = gaps(tire, 0.1)
    lv = 12.65 + rng.normal(0.0, 0.005, shape)
    weak = faulty()
    lv[weak] -= rng.uniform(0.01, 0.05, (int(weak.sum()), 1)) * x
    features.lv_resting_v[:] = gaps(np.round(lv, 2), 0.1)
    features.lv_cranking_min_v[:] = gaps(np.round(lv - 2.2, 2), 0.3)
    km = rng.gamma(2.0, 18.0, shape) * (rng.random(shape) > 0.15)
    odometer = rng.uniform(5_000.0, 150_000.0, (vehicles, 1)) + np.cumsum(km, axis=1)
    features.odometer_km[:] = odometer
    features.distance_km[:] = km
    driven = odometer - odometer[:, :1]
    rates = np.array([2.0, 2.0, 1.0, 1.0])[None, :, None] / 1000.0
    pads = rng.uniform(5.0, 70.0, (vehicles, 4, 1)) + rates * driven[:, None, :]
    caliper = faulty()
    pads[caliper, 0] += rng.uniform(0.02, 0.2, (int(caliper.sum()), 1)) * driven[caliper]
    features.pad_wear_pct[:] = np.round(np.minimum(pads, 100.0))
    engine = rng.random(vehicles) < 0.6
    coolant = 89.0 + rng.normal(0.0, 1.0, shape)
    hot = faulty() & engine
    coolant[hot] += rng.uniform(0.5, 3.0, (int(hot.sum()), 1)) * x
    coolant[~engine] = np.nan
    features.coolant_peak_c[:] = gaps(coolant - 3.0 * rng.random(shape), 0.2)
    features.coolant_steady_peak_c[:] = gaps(coolant, 0.4)
    battery = ~engine | (rng.random(vehicles) < 0.2)
    soh = rng.uniform(80.0, 99.0, (vehicles, 1)) - 0.005 * x + rng.normal(0.0, 0.05, shape)
    fading = faulty() & battery
    soh[fading] -= rng.uniform(0.3, 2.0, (int(fading.sum()), 1)) * x
    soh[~battery] = np.nan
    features.traction_soh_pct[:] = np.round(soh, 1)
    return features


def feature_records(features: DailyFeatures) -> list[tuple[Any, ...]]:
    """Rows of vehicle_daily_features (NULL for NaN) for COPY."""
    columns = [getattr(features, name) for name in SCALAR_COLUMNS]
    columns += [features.tire_cold_kpa[:, w] for w in range(len(TIRE_COLUMNS))]
    columns += [features.pad_wear_pct[:, w] for w in range(len(PAD_COLUMNS))]
    stacked = np.stack(columns, axis=-1)  # (vehicles, days, features)
    boxed = stacked.astype(object)
    boxed[np.isnan(stacked)] = None
    values = boxed.tolist()
    days = [features.start + timedelta(days=j) for j in range(features.days)]
    return [
        (vin, day, 300, *row)
        for vin, vehicle_rows in zip(features.vins, values, strict=True)
        for day, row in zip(days, vehicle_rows, strict=True)
    ]


FEATURE_COLUMNS = ("vin", "day", "samples", *SCALAR_COLUMNS, *TIRE_COLUMNS, *PAD_COLUMNS)

# One day of sparse telemetry per car, generated inside PostgreSQL: parked every 10 minutes,
# driving every 15 s from 07:00 to 08:00 (engine running, coolant warming up).
_TELEMETRY_SQL = """
INSERT INTO telemetry (vin, ts, is_moving, transmission_current_gear, speed, traveled_distance,
    exterior_air_temperature, low_voltage_battery_current_voltage,
    combustion_engine_is_running, combustion_engine_engine_coolant_temperature,
    chassis_axle_row1_wheel_left_tire_pressure, chassis_axle_row1_wheel_left_tire_temperature,
    chassis_axle_row1_wheel_right_tire_pressure, chassis_axle_row1_wheel_right_tire_temperature,
    chassis_axle_row2_wheel_left_tire_pressure, chassis_axle_row2_wheel_left_tire_temperature,
    chassis_axle_row2_wheel_right_tire_pressure, chassis_axle_row2_wheel_right_tire_temperature,
    chassis_axle_row1_wheel_left_brake_pad_wear, chassis_axle_row1_wheel_right_brake_pad_wear,
    chassis_axle_row2_wheel_left_brake_pad_wear, chassis_axle_row2_wheel_right_brake_pad_wear)
SELECT 'BENCH' || lpad(v::text, 12, '0'), ts, driving, CASE WHEN driving THEN 3 ELSE 0 END,
    CASE WHEN driving THEN 40.0 ELSE 0.0 END,
    10000.0 + v + CASE WHEN driving THEN minute - 420 ELSE 0 END,
    8.0, CASE WHEN driving THEN 14.2 ELSE 12.6 END, driving,
    CASE WHEN driving THEN least(90.0, 8.0 + (minute - 420) * 6.0) ELSE 20.0 END,
    230, 8.0, 231, 8.0, 232, 8.0, 233, 8.0, 40, 41, 20, 21
FROM generate_series(0, $3::int - 1) AS v,
     LATERAL (SELECT ts, extract(epoch FROM ts - $1::timestamptz)::int / 60 AS minute
              FROM generate_series($1::timestamptz, $2::timestamptz - interval '15 seconds',
                                   interval '15 seconds') AS ts) AS g,
     LATERAL (SELECT g.minute BETWEEN 420 AND 479 AS driving) AS d
WHERE d.driving OR extract(epoch FROM g.ts - $1::timestamptz)::int % 600 = 0
"""


async def measure_refresh(conn: asyncpg.Connection, vehicles: int, day: date) -> dict[str, Any]:
    start, end = day_bounds(day)
    await conn.execute("SELECT ingest_ensure_partitions($1, $2)", start - timedelta(days=1), end)
    await conn.execute(_TELEMETRY_SQL, start, end, vehicles)
    rows = int(await conn.fetchval("SELECT count(*) FROM telemetry"))
    await conn.execute("ANALYZE telemetry")
    began = time.perf_counter()
    written = await refresh_daily_features(conn, day=day)
    return {
        "refresh_vehicles": written,
        "refresh_rows": rows,
        "refresh_s": round(time.perf_counter() - began, 3),
    }


async def run_diagnostics_bench(
    options: DiagnosticsBenchOptions, progress: TextIO
) -> dict[str, Any]:
    def say(text: str) -> None:
        progress.write(text + "\n")
        progress.flush()

    if options.vehicles < 1 or options.days < 3 or options.repeat < 1:
        raise ValueError("need at least one vehicle, three days and one repetition")
    settings = TrendSettings(trend_window_days=options.days)
    with tempfile.TemporaryDirectory(prefix="fleetlink-dxbench-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg", PostgresOptions(fsync=False))
        try:
            say("bench: starting PostgreSQL (fsync off)")
            await asyncio.to_thread(server.start)
            dsn = await create_bench_database(server)
            conn: asyncpg.Connection = await asyncpg.connect(dsn)
            try:
                return await _run(conn, options, settings, say)
            finally:
                await conn.close()
        finally:
            await asyncio.to_thread(server.stop)


async def _run(
    conn: asyncpg.Connection,
    options: DiagnosticsBenchOptions,
    settings: TrendSettings,
    say: Callable[[str], None],
) -> dict[str, Any]:
    began = time.perf_counter()
    synthetic = synthesise_features(options.vehicles, options.days, options.seed, END_DAY)
    records = feature_records(synthetic)
    await conn.copy_records_to_table(
        "vehicle_daily_features", records=records, columns=FEATURE_COLUMNS
    )
    await conn.execute("ANALYZE vehicle_daily_features")
    say(
        f"bench: {len(records):,} feature rows ({options.vehicles:,} vehicles x "
        f"{options.days} days) synthesised and stored in {time.perf_counter() - began:.1f} s"
    )
    now = datetime.combine(END_DAY + timedelta(days=1), day_time(), UTC)
    load_s: list[float] = []
    assess_s: list[float] = []
    features = synthetic
    findings = clearances = 0
    for _ in range(options.repeat):
        t0 = time.perf_counter()
        features = await load_features(conn, until=END_DAY, days=options.days)
        t1 = time.perf_counter()
        assessment = assess_fleet(features, now, settings)
        t2 = time.perf_counter()
        load_s.append(t1 - t0)
        assess_s.append(t2 - t1)
        findings, clearances = len(assessment.findings), len(assessment.clearances)
    pass_s = [a + b for a, b in zip(load_s, assess_s, strict=True)]
    now_day = (now - window_start(features)) / timedelta(days=1)

    kernel_s = []
    for _ in range(options.repeat):
        t0 = time.perf_counter()
        run_models(features, now_day, settings)
        kernel_s.append(time.perf_counter() - t0)
    say(
        f"bench: pass {min(pass_s):.3f} s, kernels {min(kernel_s):.3f} s (best of {options.repeat})"
    )
    figures: dict[str, Any] = {
        "vehicles": options.vehicles,
        "days": options.days,
        "feature_rows": len(records),
        "load_s": round(min(load_s), 4),
        "assess_s": round(min(assess_s), 4),
        "pass_s": round(min(pass_s), 4),
        "pass_median_s": round(statistics.median(pass_s), 4),
        "kernels_s": round(min(kernel_s), 4),
        "kernels_median_s": round(statistics.median(kernel_s), 4),
        "ratio": round(min(pass_s) / min(kernel_s), 2),
        "findings": findings,
        "clearances": clearances,
    }
    if options.refresh_vehicles:
        say(f"bench: one day of telemetry for {options.refresh_vehicles:,} cars, then refresh")
        figures |= await measure_refresh(
            conn, options.refresh_vehicles, END_DAY + timedelta(days=1)
        )
    return figures


def format_table(figures: dict[str, Any]) -> str:
    lines = [
        f"trend pass over {figures['vehicles']:,} vehicles x {figures['days']} days "
        f"({figures['feature_rows']:,} feature rows)",
        f"  full pass (load_features + assess_fleet)  {figures['pass_s']:>8.3f} s"
        f"   (load {figures['load_s']:.3f} s, assess {figures['assess_s']:.3f} s;"
        f" median {figures['pass_median_s']:.3f} s)",
        f"  numpy kernels on pre-built arrays         {figures['kernels_s']:>8.3f} s"
        f"   (median {figures['kernels_median_s']:.3f} s)",
        f"  ratio pass / kernels                      {figures['ratio']:>8.2f}",
        f"  findings {figures['findings']:,}, clearances {figures['clearances']:,}",
    ]
    if "refresh_s" in figures:
        lines.append(
            f"  refresh_daily_features, one day: {figures['refresh_vehicles']:,} vehicles,"
            f" {figures['refresh_rows']:,} telemetry rows: {figures['refresh_s']:.2f} s"
        )
    return "\n".join(lines)
