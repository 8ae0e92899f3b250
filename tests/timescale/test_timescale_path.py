"""The TimescaleDB path of the telemetry store, on PGlite + TimescaleDB (see conftest.py).

All tests of this module share one database: each uses its own VIN.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from ingest.layout import WIDE_COLUMNS
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading

pytestmark = pytest.mark.asyncio(loop_scope="module")

WIDE_AGGREGATES = ("telemetry_1m", "telemetry_1h")
WIDE_AGGREGATE_COLUMNS = [
    ("vin", "text"),
    ("bucket", "timestamp with time zone"),
    *(
        (f"{c.name}_{suffix}", "bigint" if suffix == "n" else "double precision")
        for c in WIDE_COLUMNS
        for suffix in ("min", "avg", "max", "n")
    ),
]
TAIL_AGGREGATES = ("telemetry_tail_1m", "telemetry_tail_1h")
TAIL_AGGREGATE_COLUMNS = [
    ("vin", "text"),
    ("signal", "text"),
    ("bucket", "timestamp with time zone"),
    ("min_value", "double precision"),
    ("avg_value", "double precision"),
    ("max_value", "double precision"),
    ("samples", "bigint"),
]


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def batch_of(vin: str, *readings: Reading) -> Batch:
    batch = Batch()
    batch.add_readings(vin, readings)
    return batch


async def job_id(pool: asyncpg.Pool, proc: str, relation: str) -> int:
    found = await pool.fetchval(
        "SELECT j.job_id FROM timescaledb_information.jobs j"
        " LEFT JOIN timescaledb_information.continuous_aggregates c"
        "   ON c.materialization_hypertable_name = j.hypertable_name"
        " WHERE j.proc_name = $1 AND coalesce(c.view_name, j.hypertable_name) = $2",
        proc,
        relation,
    )
    assert found is not None, (proc, relation)
    return int(found)


async def count(pool: asyncpg.Pool, vin: str) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM telemetry_values WHERE vin = $1", vin))


async def test_migrations_make_telemetry_a_compressed_hypertable_with_policies(
    timescale_pool: asyncpg.Pool,
) -> None:
    pool = timescale_pool
    hypertable = await pool.fetchrow(
        "SELECT compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_name = 'telemetry'"
    )
    assert hypertable is not None and hypertable["compression_enabled"]
    settings = await pool.fetch(
        "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
        " WHERE hypertable = 'telemetry'::regclass"
    )
    assert [(s["segmentby"], s["orderby"]) for s in settings] == [("vin", "ts")]
    settings = await pool.fetch(
        "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
        " WHERE hypertable = 'telemetry_tail'::regclass"
    )
    assert [(s["segmentby"], s["orderby"]) for s in settings] == [("vin", "signal,ts")]

    jobs = {
        (r["proc_name"], r["relation"]): r["config"]
        for r in await pool.fetch(
            "SELECT j.proc_name, coalesce(c.view_name, j.hypertable_name) AS relation,"
            "       j.config::text AS config"
            " FROM timescaledb_information.jobs j"
            " LEFT JOIN timescaledb_information.continuous_aggregates c"
            "   ON c.materialization_hypertable_name = j.hypertable_name"
            " WHERE j.hypertable_name IS NOT NULL"
        )
    }
    assert set(jobs) == {
        (policy, relation)
        for table in ("telemetry", "telemetry_tail")
        for policy, relation in (
            ("policy_compression", table),
            ("policy_retention", table),
            ("policy_refresh_continuous_aggregate", f"{table}_1m"),
            ("policy_refresh_continuous_aggregate", f"{table}_1h"),
            ("policy_retention", f"{table}_1m"),
            ("policy_retention", f"{table}_1h"),
        )
    }
    assert '"7 days"' in jobs["policy_compression", "telemetry"]
    assert '"30 days"' in jobs["policy_retention", "telemetry"]

    aggregates = await pool.fetch(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
        " ORDER BY view_name"
    )
    assert [(a["view_name"], a["materialized_only"]) for a in aggregates] == [
        ("telemetry_1h", False),
        ("telemetry_1m", False),
        ("telemetry_tail_1h", False),
        ("telemetry_tail_1m", False),
    ]
    for views, expected in (
        (WIDE_AGGREGATES, WIDE_AGGREGATE_COLUMNS),
        (TAIL_AGGREGATES, TAIL_AGGREGATE_COLUMNS),
    ):
        for view in views:
            columns = await pool.fetch(
                "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
                " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
                " ORDER BY attnum",
                view,
            )
            assert [(c["attname"], c["type"]) for c in columns] == expected, view


async def test_store_stages_with_unnest_and_resends_are_stored_once(
    timescale_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    vin = "WVWZZZ1JZXW000001"
    store = TelemetryStore(timescale_pool)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    readings = [Reading("Vehicle.Speed", ms(t0) + i * 1000, float(i), None) for i in range(500)]
    readings.append(Reading("Vehicle.OEM.Mode", ms(t0), None, "eco"))
    await store.write(batch_of(vin, *readings))
    assert store.bulk == "unnest"  # COPY refused by PGlite, detected once
    assert "COPY refused by the database" in caplog.text
    await store.write(batch_of(vin, *readings))  # redelivery after a lost PUBACK
    assert await count(timescale_pool, vin) == 501
    state = await timescale_pool.fetchrow(
        "SELECT value, ts FROM vehicle_state WHERE vin = $1 AND signal = 'Vehicle.Speed'", vin
    )
    assert state is not None
    assert (state["value"], state["ts"]) == (499.0, t0 + timedelta(seconds=499))


async def test_resends_into_a_compressed_chunk_are_stored_once(
    timescale_pool: asyncpg.Pool,
) -> None:
    pool = timescale_pool
    vin = "WVWZZZ1JZXW000002"
    store = TelemetryStore(pool)
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    readings = [Reading("Vehicle.Speed", ms(old) + i * 1000, float(i), None) for i in range(100)]
    await store.write(batch_of(vin, *readings))

    await pool.execute(f"CALL run_job({await job_id(pool, 'policy_compression', 'telemetry')})")
    statuses = await pool.fetch(
        "SELECT s.compression_status FROM chunk_compression_stats('telemetry') s"
        " JOIN timescaledb_information.chunks c ON c.chunk_name = s.chunk_name"
        " WHERE $1 >= c.range_start AND $1 < c.range_end",
        old,
    )
    assert [s["compression_status"] for s in statuses] == ["Compressed"]

    late = Reading("Vehicle.Speed", ms(old) + 100_000, 100.0, None)  # new sample, same chunk
    await store.write(batch_of(vin, *readings[50:], late))
    assert await count(pool, vin) == 101
    assert await pool.fetchval(
        "SELECT sum(value) FROM telemetry_values WHERE vin = $1", vin
    ) == sum(range(101))


async def test_continuous_aggregates_give_min_avg_max_per_bucket(
    timescale_pool: asyncpg.Pool,
) -> None:
    pool = timescale_pool
    vin = "WBA3A5C50CF256985"
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    values = {  # minute -> values sampled in it
        0: [1.0, 2.0, 6.0],
        1: [10.0],
        59: [4.0, 8.0],
    }
    readings = [
        Reading("Vehicle.Speed", ms(hour + timedelta(minutes=m, seconds=i)), v, None)
        for m, vs in values.items()
        for i, v in enumerate(vs)
    ]
    readings.append(Reading("Vehicle.OEM.Mode", ms(hour), None, "eco"))  # text: not aggregated
    next_hour = Reading("Vehicle.Speed", ms(hour + timedelta(hours=1, seconds=5)), 100.0, None)
    await TelemetryStore(pool).write(batch_of(vin, *readings, next_hour))

    query = (
        "SELECT bucket, speed_min, speed_avg, speed_max, speed_n FROM {view}"
        " WHERE vin = $1 ORDER BY bucket"
    )
    expected_1m = [
        (hour + timedelta(minutes=m), min(vs), sum(vs) / len(vs), max(vs), len(vs))
        for m, vs in values.items()
    ] + [(hour + timedelta(hours=1), 100.0, 100.0, 100.0, 1)]
    every = [v for vs in values.values() for v in vs]
    expected_1h = [
        (hour, min(every), sum(every) / len(every), max(every), len(every)),
        (hour + timedelta(hours=1), 100.0, 100.0, 100.0, 1),
    ]
    # Real-time aggregation answers before anything is materialized ...
    assert [tuple(r) for r in await pool.fetch(query.format(view="telemetry_1m"), vin)] == (
        expected_1m
    )
    # ... and so does the materialization (refresh_continuous_aggregate: outside a transaction).
    start, end = hour - timedelta(hours=1), hour + timedelta(hours=3)
    for view, expected in (("telemetry_1m", expected_1m), ("telemetry_1h", expected_1h)):
        await pool.execute(
            f"CALL refresh_continuous_aggregate('{view}', $1::timestamptz, $2::timestamptz)",
            start,
            end,
        )
        table = await pool.fetchval(
            "SELECT format('%I.%I', materialization_hypertable_schema,"
            "              materialization_hypertable_name)"
            " FROM timescaledb_information.continuous_aggregates WHERE view_name = $1",
            view,
        )
        materialized = await pool.fetchval(f"SELECT count(*) FROM {table} WHERE vin = $1", vin)
        assert materialized == len(expected), view
        rows = [tuple(r) for r in await pool.fetch(query.format(view=view), vin)]
        assert rows == expected, view


async def test_retention_job_drops_chunks_older_than_30_days(
    timescale_pool: asyncpg.Pool,
) -> None:
    pool = timescale_pool
    vin = "WVWZZZ1JZXW000003"
    now = datetime.now(UTC).replace(microsecond=0)
    store = TelemetryStore(pool)
    await store.write(
        batch_of(
            vin,
            Reading("Vehicle.Speed", ms(now - timedelta(days=40)), 1.0, None),
            Reading("Vehicle.Speed", ms(now - timedelta(days=29)), 2.0, None),
            Reading("Vehicle.Speed", ms(now - timedelta(minutes=1)), 3.0, None),
        )
    )
    old_chunks = await pool.fetchval(
        "SELECT count(*) FROM show_chunks('telemetry', older_than => interval '30 days')"
    )
    assert old_chunks >= 1
    await pool.execute(f"CALL run_job({await job_id(pool, 'policy_retention', 'telemetry')})")
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM show_chunks('telemetry', older_than => interval '30 days')"
        )
        == 0
    )
    values = await pool.fetch("SELECT value FROM telemetry_values WHERE vin = $1 ORDER BY ts", vin)
    assert [v["value"] for v in values] == [2.0, 3.0]


async def test_retention_follows_the_setting(timescale_pool: asyncpg.Pool) -> None:
    pool = timescale_pool

    async def windows() -> dict[tuple[str, str], str]:
        rows = await pool.fetch(
            "SELECT j.proc_name, coalesce(c.view_name, j.hypertable_name) AS relation,"
            "       coalesce(j.config ->> 'drop_after', j.config ->> 'start_offset') AS window_"
            " FROM timescaledb_information.jobs j"
            " LEFT JOIN timescaledb_information.continuous_aggregates c"
            "   ON c.materialization_hypertable_name = j.hypertable_name"
            " WHERE j.proc_name IN ('policy_retention', 'policy_refresh_continuous_aggregate')"
        )
        return {(r["proc_name"], r["relation"]): r["window_"] for r in rows}

    assert set((await windows()).values()) == {"30 days"}
    assert await pool.fetchval("SELECT ingest_apply_retention(45)") is True
    after = await windows()
    assert len(after) == 2 + 4 + 4  # both tables; retention and refresh of the four aggregates
    assert set(after.values()) == {"45 days"}
    assert await pool.fetchval("SELECT ingest_apply_retention(45)") is False  # already so
    assert await pool.fetchval("SELECT ingest_apply_retention(30)") is True
    assert set((await windows()).values()) == {"30 days"}
    with pytest.raises(asyncpg.RaiseError, match="at least 1 day"):
        await pool.fetchval("SELECT ingest_apply_retention(0)")
