"""Native-partition retention against embedded PostgreSQL: whole expired days are dropped."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from ingest.retention import drop_expired_partitions, expired_partitions

NOW = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)


def test_a_partition_expires_only_when_its_whole_day_is_outside_the_window() -> None:
    names = [
        "telemetry_p20250228",
        "telemetry_tail_p20250228",
        "telemetry_p20250301",
        "telemetry_p20250302",
        "telemetry_other_p20250101",
        "other",
    ]
    feb28 = ["telemetry_p20250228", "telemetry_tail_p20250228"]
    # cutoff = 2025-03-01 12:00: 03-01 still holds in-window samples after noon
    assert expired_partitions(names, retention_days=30, now=NOW) == feb28
    midnight = datetime(2025, 3, 31, tzinfo=UTC)
    assert expired_partitions(names, retention_days=30, now=midnight) == feb28
    assert expired_partitions(names, retention_days=29, now=midnight) == sorted(
        [*feb28, "telemetry_p20250301"]
    )


def test_naive_now_and_empty_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        expired_partitions([], retention_days=30, now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="retention_days"):
        expired_partitions([], retention_days=0, now=NOW)


async def test_expired_partitions_are_dropped_and_recent_ones_kept(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval(
            "SELECT ingest_ensure_partitions($1, $2)",
            datetime(2025, 2, 27, tzinfo=UTC),
            datetime(2025, 3, 2, tzinfo=UTC),
        )
        await conn.executemany(
            "INSERT INTO telemetry (vin, ts, speed) VALUES ('WVWZZZ1JZXW000001', $1, 1)",
            [(datetime(2025, 2, 27, 23, tzinfo=UTC),), (datetime(2025, 3, 1, 13, tzinfo=UTC),)],
        )
        dropped = await drop_expired_partitions(conn, retention_days=30, now=NOW)
        assert dropped == [
            "telemetry_p20250227",
            "telemetry_p20250228",
            "telemetry_tail_p20250227",
            "telemetry_tail_p20250228",
        ]
        left = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent IN ('telemetry'::regclass, 'telemetry_tail'::regclass)"
            " ORDER BY 1"
        )
        assert [r["relname"] for r in left] == [
            "telemetry_p20250301",
            "telemetry_p20250302",
            "telemetry_tail_p20250301",
            "telemetry_tail_p20250302",
        ]
        assert await conn.fetchval("SELECT count(*) FROM telemetry_values") == 1
        assert await drop_expired_partitions(conn, retention_days=30, now=NOW) == []


async def test_store_drops_expired_days_and_forgets_them(pool: asyncpg.Pool) -> None:
    from ingest.store import Batch, TelemetryStore
    from ingest.validation import Reading

    store = TelemetryStore(pool)
    day = 86_400_000
    now = 1_763_892_000_000
    batch = Batch()
    batch.add_readings(
        "WVWZZZ1JZXW000001",
        [
            Reading("Vehicle.Speed", now - 40 * day, 1.0, None),
            Reading("Vehicle.Speed", now, 2.0, None),
        ],
    )
    await store.write(batch)
    dropped = await store.apply_retention(retention_days=30, now_ms=now)
    # Every day wholly older than 30 days goes (the batch made partitions for its whole range).
    assert {"telemetry_p20251014", "telemetry_tail_p20251014"} <= set(dropped)
    assert len(dropped) == 2 * 10
    assert await pool.fetchval("SELECT count(*) FROM telemetry_values") == 1
    # A late write for the dropped day recreates its partition rather than failing.
    await store.write(batch)
    assert await pool.fetchval("SELECT count(*) FROM telemetry_values") == 2
