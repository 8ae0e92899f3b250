"""Per-package SQL migrations against a real, empty PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest

from fleetlink.migrations import MIGRATING_PACKAGES, Migration, MigrationError, discover, migrate


@pytest.fixture
async def conn(empty_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(empty_database_url)
    yield connection
    await connection.close()


async def recorded(conn: asyncpg.Connection) -> list[tuple[str, int, str, str]]:
    rows = await conn.fetch(
        "SELECT package, version, name, checksum FROM fleetlink_migrations"
        " ORDER BY applied_at, package, version"
    )
    return [(r["package"], r["version"], r["name"], r["checksum"]) for r in rows]


async def table_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name))


def test_discover_finds_each_packages_migrations_in_order() -> None:
    found = discover()
    assert {(m.package, m.version) for m in found} >= {("ingest", 1), ("api", 1)}
    order = [MIGRATING_PACKAGES.index(m.package) for m in found]
    assert order == sorted(order)
    for package in MIGRATING_PACKAGES:
        versions = [m.version for m in found if m.package == package]
        assert versions == sorted(versions) == sorted(set(versions))
    assert all(m.sql.strip() for m in found)


async def test_migrate_applies_every_migration_once_and_records_it(
    conn: asyncpg.Connection,
) -> None:
    migrations = discover()
    assert await migrate(conn) == len(migrations)
    assert {r[:3] for r in await recorded(conn)} == {
        (m.package, m.version, m.name) for m in migrations
    }
    assert {r[3] for r in await recorded(conn)} == {m.checksum for m in migrations}
    for table in ("telemetry", "vehicle_state", "dead_letters", "vehicles"):
        assert await table_exists(conn, table), table

    assert await migrate(conn) == 0  # a restart applies nothing
    assert len(await recorded(conn)) == len(migrations)


async def test_telemetry_is_natively_partitioned_without_timescaledb(
    conn: asyncpg.Connection,
) -> None:
    await migrate(conn)
    assert not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
    )
    strategy = await conn.fetchval(
        "SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = 'telemetry'::regclass"
    )
    assert strategy == "r"  # range


async def test_ensure_partitions_creates_daily_partitions_idempotently(
    conn: asyncpg.Connection,
) -> None:
    await migrate(conn)
    start = datetime(2025, 1, 30, 23, 59, tzinfo=UTC)
    end = datetime(2025, 2, 2, 0, 1, tzinfo=UTC)
    # four days, for the wide table and the long tail
    assert await conn.fetchval("SELECT ingest_ensure_partitions($1, $2)", start, end) == 8
    assert await conn.fetchval("SELECT ingest_ensure_partitions($1, $2)", start, end) == 0
    partitions = await conn.fetch(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'telemetry'::regclass ORDER BY c.relname"
    )
    assert [p["relname"] for p in partitions] == [
        "telemetry_p20250130",
        "telemetry_p20250131",
        "telemetry_p20250201",
        "telemetry_p20250202",
    ]
    assert "2025-01-31 00:00:00+00" in partitions[0]["bound"]  # day boundaries in UTC

    # the last second of a day and the first of the next land in their own partitions
    await conn.executemany(
        "INSERT INTO telemetry (vin, ts, speed) VALUES ('WVWZZZ1JZXW000001', $1, 1)",
        [
            (datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC),),
            (datetime(2025, 2, 1, 0, 0, 0, tzinfo=UTC),),
        ],
    )
    assert await conn.fetchval("SELECT count(*) FROM telemetry_p20250131") == 1
    assert await conn.fetchval("SELECT count(*) FROM telemetry_p20250201") == 1
    # outside every partition: refused, not silently stored
    with pytest.raises(asyncpg.PostgresError):
        await conn.execute(
            "INSERT INTO telemetry (vin, ts, speed)"
            " VALUES ('WVWZZZ1JZXW000001', '2030-01-01T00:00:00Z', 1)"
        )


async def test_a_changed_migration_stops_start_up(conn: asyncpg.Connection) -> None:
    migrations = discover()
    await migrate(conn, migrations)
    edited = [*migrations[:-1], replace(migrations[-1], sql=migrations[-1].sql + "\n-- edited")]
    with pytest.raises(MigrationError) as error:
        await migrate(conn, edited)
    assert error.value.code == "migration_failed"
    assert (error.value.package, error.value.version) == (
        migrations[-1].package,
        migrations[-1].version,
    )
    assert "changed after it was applied" in str(error.value)
    assert {r[3] for r in await recorded(conn)} == {m.checksum for m in migrations}


async def test_a_failing_migration_raises_and_is_not_recorded(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    broken = Migration(
        "api",
        900,
        "broken",
        "CREATE TABLE half_done (id integer); SELECT * FROM no_such_table;",
    )
    with pytest.raises(MigrationError) as error:
        await migrate(conn, [*discover(), broken])
    assert error.value.code == "migration_failed"
    assert (error.value.package, error.value.version) == ("api", 900)
    assert "no_such_table" in str(error.value)
    assert ("api", 900) not in {r[:2] for r in await recorded(conn)}
    assert not await table_exists(conn, "half_done")  # its partial DDL was rolled back

    # the connection is still usable and a fixed migration applies
    fixed = replace(broken, sql="CREATE TABLE half_done (id integer);")
    assert await migrate(conn, [*discover(), fixed]) == 1
    assert await table_exists(conn, "half_done")


async def test_concurrent_starters_apply_each_migration_exactly_once(
    empty_database_url: str,
) -> None:
    first = await asyncpg.connect(empty_database_url)
    second = await asyncpg.connect(empty_database_url)
    try:
        counts = await asyncio.gather(migrate(first), migrate(second))
        assert sorted(counts) == [0, len(discover())]
        keys = await first.fetch(
            "SELECT package, version, count(*) AS n FROM fleetlink_migrations"
            " GROUP BY package, version"
        )
        assert len(keys) == len(discover())
        assert all(k["n"] == 1 for k in keys)
    finally:
        await first.close()
        await second.close()


def test_continuous_aggregates_are_created_with_no_data() -> None:
    # Every migration runs inside the runner's transaction. TimescaleDB refuses
    # CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous) WITH DATA (the default) there and
    # in DO blocks; WITH NO DATA is allowed, and real-time aggregation covers the gap.
    for migration in discover():
        sql = " ".join(migration.sql.lower().split())
        created = sql.count("with (timescaledb.continuous")
        assert sql.count("with no data") >= created, (migration.package, migration.name)


async def test_timescale_policies_are_a_no_op_on_native_partitions(
    conn: asyncpg.Connection,
) -> None:
    await migrate(conn)
    assert ("ingest", 3, "timescale_policies") in {r[:3] for r in await recorded(conn)}
    assert not await table_exists(conn, "telemetry_1m")
    assert not await table_exists(conn, "telemetry_1h")
