"""TelemetryStore against a real PostgreSQL: idempotence, latest state, dead letters, seq."""

from __future__ import annotations

import asyncpg

from ingest.errors import RejectReason
from ingest.store import Batch, DeadLetter, TelemetryStore
from ingest.validation import Reading, Rejection

VIN = "WVWZZZ1JZXW000001"
T0 = 1_763_892_000_000


def batch_of(*readings: Reading, seqs: tuple[int, ...] = ()) -> Batch:
    batch = Batch()
    batch.add_readings(VIN, readings)
    for seq in seqs:
        batch.add_seq(VIN, seq)
    return batch


async def test_resent_samples_are_stored_once(pool: asyncpg.Pool) -> None:
    store = TelemetryStore(pool)
    readings = [Reading("Vehicle.Speed", T0 + i * 1000, float(i), None) for i in range(10)]
    await store.write(batch_of(*readings))
    await store.write(batch_of(*readings))  # redelivery after a lost PUBACK
    await store.write(batch_of(*readings[5:], Reading("Vehicle.Speed", T0 + 10_000, 10.0, None)))
    count = await pool.fetchval("SELECT count(*) FROM telemetry_values WHERE vin = $1", VIN)
    assert count == 11


async def test_latest_state_keeps_the_newest_sample(pool: asyncpg.Pool) -> None:
    store = TelemetryStore(pool)
    await store.write(
        batch_of(
            Reading("Vehicle.Speed", T0 + 5000, 50.0, None),
            Reading("Vehicle.Speed", T0 + 1000, 10.0, None),
        )
    )
    # A late, older sample (store-and-forward backlog) must not overwrite newer state.
    await store.write(
        batch_of(
            Reading("Vehicle.Speed", T0, 0.0, None), Reading("Vehicle.OEM.Mode", T0, None, "eco")
        )
    )
    rows = await pool.fetch(
        "SELECT signal, value, value_text, ts FROM vehicle_state WHERE vin = $1 ORDER BY signal",
        VIN,
    )
    assert [(r["signal"], r["value"], r["value_text"]) for r in rows] == [
        ("Vehicle.OEM.Mode", None, "eco"),
        ("Vehicle.Speed", 50.0, None),
    ]
    assert int(rows[1]["ts"].timestamp() * 1000) == T0 + 5000


async def test_dead_letters_are_committed_with_the_batch(pool: asyncpg.Pool) -> None:
    store = TelemetryStore(pool)
    batch = batch_of(Reading("Vehicle.Speed", T0, 1.0, None))
    batch.dead_letters.append(
        DeadLetter(
            VIN,
            f"v1/vehicles/{VIN}/telemetry",
            Rejection(RejectReason.OUT_OF_RANGE, "Vehicle.Speed: 9999", b'{"x":1}'),
        )
    )
    await store.write(batch)
    row = await pool.fetchrow("SELECT vin, reason, detail, payload FROM dead_letters")
    assert row is not None
    assert (row["vin"], row["reason"], row["payload"]) == (VIN, "out_of_range", b'{"x":1}')


async def test_sequence_gaps_and_duplicates_are_counted(pool: asyncpg.Pool) -> None:
    store = TelemetryStore(pool)
    await store.write(batch_of(seqs=(1, 2, 3)))
    await store.write(batch_of(seqs=(6, 7, 7)))  # gap of 2 (4, 5) and one in-batch duplicate
    await store.write(batch_of(seqs=(7,)))  # a resend of a message already seen
    row = await pool.fetchrow("SELECT last_seq, gaps, duplicates FROM ingest_sequences")
    assert row is not None
    assert dict(row) == {"last_seq": 7, "gaps": 2, "duplicates": 2}


async def test_partitions_are_created_on_demand_for_old_and_new_days(pool: asyncpg.Pool) -> None:
    store = TelemetryStore(pool)
    day = 86_400_000
    await store.write(
        batch_of(
            Reading("Vehicle.Speed", T0 - 20 * day, 1.0, None),
            Reading("Vehicle.Speed", T0 + day, 2.0, None),
        )
    )
    partitions = await pool.fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'telemetry'::regclass"
    )
    assert partitions == 22  # 20 days back .. 1 day ahead, inclusive
    assert await pool.fetchval("SELECT count(*) FROM telemetry_values") == 2


async def test_unnest_staging_stores_the_same_rows_as_copy(pool: asyncpg.Pool) -> None:
    # The path taken where COPY is refused (PGlite, see tests/timescale); here forced explicitly.
    store = TelemetryStore(pool, bulk="unnest")
    readings = [
        Reading("Vehicle.Speed", T0, 1.5, None),
        Reading("Vehicle.OEM.Mode", T0, None, "eco"),
    ]
    await store.write(batch_of(*readings))
    await store.write(batch_of(*readings))
    rows = await pool.fetch(
        "SELECT signal, value, value_text FROM telemetry_values WHERE vin = $1 ORDER BY signal", VIN
    )
    assert [tuple(r) for r in rows] == [
        ("Vehicle.OEM.Mode", None, "eco"),
        ("Vehicle.Speed", 1.5, None),
    ]
    assert store.bulk == "unnest"


async def test_auto_mode_settles_on_copy_where_copy_works(pool: asyncpg.Pool) -> None:
    store = TelemetryStore(pool)
    assert store.bulk == "auto"
    await store.write(batch_of(Reading("Vehicle.Speed", T0, 1.0, None)))
    assert store.bulk == "copy"
