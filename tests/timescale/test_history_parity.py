"""Issue 5, must show 3: the same history query gives the same answer on the TimescaleDB path
(continuous aggregates, PGlite + TimescaleDB 2.23) and the native path (date_bin over day
partitions, embedded PostgreSQL), for raw samples and 1-minute and 1-hour buckets."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from fleetlink.embedded_postgres import EmbeddedPostgres
from ingest.history import Bucket, BucketPoint, History, HistoryQuery, HistoryReader, RawPoint
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading

pytestmark = pytest.mark.asyncio(loop_scope="module")

VIN = "WVWZZZ1JZXW000001"
# Recent enough for the 30-day retention, and starting mid-minute so alignment matters.
T0 = (datetime.now(UTC) - timedelta(days=2)).replace(minute=7, second=30, microsecond=0)
# Wide columns of each kind (double, integer, boolean) and a long-tail (unknown) signal.
SIGNALS = (
    "Vehicle.Speed",
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure",
    "Vehicle.IsMoving",
    "Vehicle.OEM.Telematics.Rssi",
)


def readings() -> list[Reading]:
    t0 = int(T0.timestamp() * 1000)
    out: list[Reading] = []
    for i in range(3 * 3600 // 5):  # three hours, a sample every 5 s
        ts = t0 + i * 5000
        out.append(Reading(SIGNALS[0], ts, float((i * 37) % 151) + 0.25, None))
        if i % 3:  # the second signal is sparser, with gaps
            out.append(Reading(SIGNALS[1], ts, 60.0 + math.sin(i / 50) * 30, None))
        if i % 4 == 0:
            out.append(Reading(SIGNALS[2], ts, float(230 + i % 7), None))
            out.append(Reading(SIGNALS[3], ts, float(i % 3 != 0), None))
        if i % 5 == 0:
            out.append(Reading(SIGNALS[4], ts, -90.0 + (i % 13) * 1.5, None))
    out.append(Reading("Vehicle.OEM.Mode", t0, None, "eco"))  # text: raw only
    return out


async def store_all(pool: asyncpg.Pool) -> None:
    batch = Batch()
    batch.add_readings(VIN, readings())
    await TelemetryStore(pool).write(batch)


def same(native: History, timescale: History) -> None:
    assert (native.start, native.end, native.truncated) == (
        timescale.start,
        timescale.end,
        timescale.truncated,
    )
    assert len(native.points) == len(timescale.points) > 0
    for a, b in zip(native.points, timescale.points, strict=True):
        if isinstance(a, RawPoint):
            assert a == b
        else:
            assert isinstance(b, BucketPoint)
            assert (a.signal, a.bucket, a.min, a.max, a.samples) == (
                b.signal,
                b.bucket,
                b.min,
                b.max,
                b.samples,
            )
            assert a.avg == pytest.approx(b.avg, rel=1e-12)  # summation order may differ


async def test_history_is_the_same_on_both_storage_paths(
    timescale_pool: asyncpg.Pool, postgres_server: EmbeddedPostgres
) -> None:
    name = f"parity_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server.dsn("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE fleetlink_template")
    finally:
        await admin.close()
    native_pool = await asyncpg.create_pool(postgres_server.dsn(name), min_size=1, max_size=2)
    try:
        for pool in (native_pool, timescale_pool):
            await store_all(pool)
        assert (
            await timescale_pool.fetchval(
                "SELECT count(*) FROM timescaledb_information.continuous_aggregates"
            )
            == 4  # 1 minute and 1 hour, of the wide table and of the long tail
        )
        assert not await native_pool.fetchval("SELECT to_regclass('telemetry_1m') IS NOT NULL")
        native, timescale = HistoryReader(native_pool), HistoryReader(timescale_pool)
        queries = [
            HistoryQuery(
                VIN, (*SIGNALS, "Vehicle.OEM.Mode"), T0, T0 + timedelta(minutes=10), None, 10_000
            ),
            HistoryQuery(
                VIN,
                SIGNALS,
                T0 + timedelta(minutes=3, seconds=10),
                T0 + timedelta(hours=2, minutes=1),
                Bucket.MINUTE,
                10_000,
            ),
            HistoryQuery(
                VIN, SIGNALS, T0 - timedelta(hours=1), T0 + timedelta(hours=5), Bucket.HOUR, 10_000
            ),
            HistoryQuery(VIN, SIGNALS, T0, T0 + timedelta(hours=3), Bucket.MINUTE, 50),
        ]
        for query in queries:
            same(await native.read(query), await timescale.read(query))
        # Before and after the aggregates are materialised: real-time aggregation answers the
        # same as the refreshed view.
        async with timescale_pool.acquire() as conn:
            for view in ("telemetry_1m", "telemetry_1h", "telemetry_tail_1m", "telemetry_tail_1h"):
                await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
        for query in queries[1:]:
            same(await native.read(query), await timescale.read(query))
    finally:
        await native_pool.close()
        admin = await asyncpg.connect(postgres_server.dsn("postgres"))
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()
