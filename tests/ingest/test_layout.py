"""The wide layout (ADR 0005): the migrated schema matches ingest.layout, values keep their
types, and samples that meet in one (VIN, ts) merge without losing or doubling a value."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from ingest.layout import COLUMNS, MAX_COLUMN_NAME, WIDE_COLUMNS, column_name
from ingest.store import Batch, TelemetryStore
from ingest.validation import Reading
from protocol.catalogue import CATALOGUE, Datatype

VIN = "WVWZZZ1JZXW000001"
T0 = 1_763_892_000_000
SPEED, MOVING, GEAR = (
    "Vehicle.Speed",
    "Vehicle.IsMoving",
    "Vehicle.Powertrain.Transmission.CurrentGear",
)
PRESSURE = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"


def batch_of(*readings: Reading) -> Batch:
    batch = Batch()
    batch.add_readings(VIN, readings)
    return batch


def test_every_numeric_and_boolean_catalogue_signal_has_a_short_unique_column() -> None:
    wide = {s.name for s in CATALOGUE.values() if s.datatype is not Datatype.STRING}
    assert set(COLUMNS) == wide
    names = [c.name for c in WIDE_COLUMNS]
    assert len(set(names)) == len(names)
    assert max(len(n) for n in names) <= MAX_COLUMN_NAME
    assert column_name("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current") == (
        "traction_battery_state_of_charge_current"
    )


async def test_the_migrated_table_has_exactly_the_layouts_columns(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_name = 'telemetry' ORDER BY ordinal_position"
    )
    assert [(r["column_name"], r["data_type"]) for r in rows] == [
        ("vin", "text"),
        ("ts", "timestamp with time zone"),
        *((c.name, c.sql_type) for c in WIDE_COLUMNS),
    ]
    # The narrow view unpivots every column: one row per signal of a fully populated sample.
    day = datetime(2025, 1, 1, tzinfo=UTC)
    await pool.fetchval("SELECT ingest_ensure_partitions($1, $1)", day)
    await pool.execute(
        "INSERT INTO telemetry (vin, ts, {}) VALUES ($1, $2, {})".format(
            ", ".join(c.name for c in WIDE_COLUMNS),
            ", ".join("true" if c.datatype is Datatype.BOOLEAN else "1" for c in WIDE_COLUMNS),
        ),
        VIN,
        day,
    )
    signals = await pool.fetch("SELECT signal, value FROM telemetry_values WHERE vin = $1", VIN)
    assert sorted(r["signal"] for r in signals) == sorted(COLUMNS)
    assert {r["value"] for r in signals} == {1.0}


async def test_values_keep_their_type_in_typed_columns(pool: asyncpg.Pool) -> None:
    await TelemetryStore(pool).write(
        batch_of(
            Reading(SPEED, T0, 52.5, None),
            Reading(MOVING, T0, 1.0, None),
            Reading(GEAR, T0, -1.0, None),
            Reading(PRESSURE, T0, 231.0, None),
        )
    )
    row = await pool.fetchrow(
        "SELECT speed, is_moving, transmission_current_gear AS gear,"
        " chassis_axle_row1_wheel_left_tire_pressure AS pressure FROM telemetry WHERE vin = $1",
        VIN,
    )
    assert row is not None
    assert tuple(row) == (52.5, True, -1, 231)
    assert [type(v) for v in row] == [float, bool, int, int]


async def test_messages_sharing_a_sample_time_merge_and_the_first_value_wins(
    pool: asyncpg.Pool,
) -> None:
    store = TelemetryStore(pool)
    # Two messages of one batch carry parts of the same sample (same VIN and ts).
    batch = batch_of(Reading(SPEED, T0, 10.0, None), Reading("Vehicle.OEM.Mode", T0, None, "eco"))
    batch.add_readings(VIN, [Reading(MOVING, T0, 1.0, None), Reading(SPEED, T0, 99.0, None)])
    await store.write(batch)
    # Later: a resend of part of it, a new signal for the stored sample, a conflicting value.
    await store.write(
        batch_of(
            Reading(SPEED, T0, 11.0, None),
            Reading(PRESSURE, T0, 240.0, None),
            Reading("Vehicle.OEM.Mode", T0, None, "sport"),
            Reading("Vehicle.OEM.Rssi", T0, -80.0, None),
        )
    )
    assert store.bulk == "copy"  # the collision took the merge path once, not for good
    assert await pool.fetchval("SELECT count(*) FROM telemetry WHERE vin = $1", VIN) == 1
    values = {
        r["signal"]: r["value"] if r["value_text"] is None else r["value_text"]
        for r in await pool.fetch(
            "SELECT signal, value, value_text FROM telemetry_values WHERE vin = $1", VIN
        )
    }
    assert values == {
        SPEED: 10.0,
        MOVING: 1.0,
        PRESSURE: 240.0,
        "Vehicle.OEM.Mode": "eco",
        "Vehicle.OEM.Rssi": -80.0,
    }


async def test_a_plain_resend_writes_no_new_row_version(pool: asyncpg.Pool) -> None:
    store = TelemetryStore(pool)
    readings = [Reading(SPEED, T0 + i * 1000, float(i), None) for i in range(5)]
    await store.write(batch_of(*readings))
    before = await pool.fetch("SELECT xmin::text AS version FROM telemetry WHERE vin = $1", VIN)
    await store.write(batch_of(*readings))
    after = await pool.fetch("SELECT xmin::text AS version FROM telemetry WHERE vin = $1", VIN)
    assert sorted(r["version"] for r in after) == sorted(r["version"] for r in before)


@pytest.mark.parametrize("bulk", ["copy", "unnest"])
async def test_both_bulk_paths_store_the_same_wide_rows(pool: asyncpg.Pool, bulk: str) -> None:
    vin = f"WVWZZZ1JZXW00000{2 if bulk == 'copy' else 3}"
    batch = Batch()
    batch.add_readings(
        vin,
        [
            Reading(SPEED, T0, 1.5, None),
            Reading(MOVING, T0, 0.0, None),
            Reading(GEAR, T0 + 1000, 3.0, None),
            Reading("Vehicle.OEM.Flag", T0 + 1000, 1.0, None),
        ],
    )
    store = TelemetryStore(pool, bulk=bulk)  # type: ignore[arg-type]
    await store.write(batch)
    await store.write(batch)  # and the merge path, from that staging
    rows = await pool.fetch(
        "SELECT speed, is_moving, transmission_current_gear FROM telemetry WHERE vin = $1"
        " ORDER BY ts",
        vin,
    )
    assert [tuple(r) for r in rows] == [(1.5, False, None), (None, None, 3)]
    assert await pool.fetchval("SELECT count(*) FROM telemetry_tail WHERE vin = $1", vin) == 1
