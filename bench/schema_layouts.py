"""Which telemetry layout: the measurement behind ADR 0005.

    python -m bench.schema_layouts [--vehicles 200] [--minutes 10] [--json]

One realistic data set (simulated cars, 1 Hz, each sample the car's full signal set, a few
unknown signals and the catalogue's one string signal) is written into four candidate layouts
in one fresh embedded PostgreSQL (natively partitioned by day, fsync off), the way ingest would:
batches of samples turned into rows in Python and COPYed, one transaction per batch. For each
layout it reports: write speed in signal values per second (row building included, as ingest
pays it), bytes on disk per value (table + primary key), and the time of the history queries
the API serves (raw samples and 1-minute min/avg/max of one signal of one car, for a catalogue
signal and a long-tail one).

Layouts:
- ``narrow``: one row per value, (vin, signal, ts) -> value / value_text (ADR 0003).
- ``wide_all``: one row per sample, (vin, ts) -> a typed column for every numeric and boolean
  catalogue signal; the long tail (strings, unknown signals) in a narrow side table.
- ``wide_hot``: like ``wide_all`` with columns only for the signals nearly every car sends in
  every sample; the rest of the catalogue in the narrow side table too.
- ``wide_jsonb``: like ``wide_all``, the long tail in a jsonb column of the same row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from fleetlink.embedded_postgres import EmbeddedPostgres, PostgresOptions
from ingest.layout import SQL_TYPES, column_name
from protocol.catalogue import CATALOGUE, Datatype
from protocol.clock import utc_from_ms
from simulator.fleet import build_fleet
from simulator.vehicle_model import VehicleModel

BATCH_SAMPLES = 2_000
QUERY_VEHICLES = 40
SEED = 5
UNKNOWN_SIGNALS = ("Vehicle.OEM.Adas.LaneAssistInterventions", "Vehicle.OEM.Telematics.Rssi")
HOT_SIGNAL = "Vehicle.Speed"
TAIL_SIGNAL = "Vehicle.OEM.Telematics.Rssi"
# Signals nearly every car sends in every sample, whatever its powertrain.
HOT_SUBSET = (
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.CurrentLocation.Heading",
    "Vehicle.Speed",
    "Vehicle.TraveledDistance",
    "Vehicle.IsMoving",
    "Vehicle.Exterior.AirTemperature",
    "Vehicle.Powertrain.Range",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Service.DistanceToService",
)


Sample = tuple[str, int, dict[str, Any]]  # vin, ts_ms, signals
Record = tuple[Any, ...]


def generate(vehicles: int, minutes: int) -> list[Sample]:
    """The data set: every car's sample each second, in arrival (time) order."""
    start_ms = int(time.time() * 1000) - minutes * 60_000
    rng = random.Random(SEED)
    models = [
        VehicleModel(profile, random.Random(f"{SEED}:{profile.vin}"), start_ms)
        for profile in build_fleet(vehicles, SEED)
    ]
    samples: list[Sample] = []
    for second in range(minutes * 60):
        now_ms = start_ms + second * 1000
        for model in models:
            model.step(now_ms)
            signals: dict[str, Any] = dict(model.read_signals())
            if second % 10 == 0:  # the long tail is sparse: a string and OEM extras now and then
                signals["Vehicle.Powertrain.CombustionEngine.EngineOil.Level"] = "NORMAL"
                signals[UNKNOWN_SIGNALS[0]] = rng.randint(0, 3)
                signals[UNKNOWN_SIGNALS[1]] = rng.uniform(-110.0, -60.0)
            samples.append((str(model.profile.vin), now_ms, signals))
    return samples


@dataclass(frozen=True)
class Layout:
    name: str
    ddl: str
    tables: tuple[str, ...]
    to_records: Callable[[Sequence[Sample]], dict[str, list[Record]]]
    columns: dict[str, tuple[str, ...]]
    raw_query: Callable[[str], str]  # signal -> SQL taking ($1 vin)
    bucket_query: Callable[[str], str]


def _narrow_rows(vin: str, ts: datetime, signals: dict[str, Any]) -> Iterable[Record]:
    for signal, value in signals.items():
        if isinstance(value, str):
            yield (vin, signal, ts, None, value)
        else:
            yield (vin, signal, ts, float(value), None)


def _partitioned(name: str, body: str) -> str:
    return f"""
    CREATE TABLE {name} ({body}) PARTITION BY RANGE (ts);
    CREATE TABLE {name}_p PARTITION OF {name} FOR VALUES FROM ('2000-01-01') TO ('2100-01-01');
    """


_NARROW_BODY = """vin text NOT NULL, signal text NOT NULL, ts timestamptz NOT NULL,
    value double precision, value_text text, PRIMARY KEY (vin, signal, ts)"""
_NARROW_COLUMNS = ("vin", "signal", "ts", "value", "value_text")


def _narrow_raw(table: str) -> Callable[[str], str]:
    return lambda signal: (
        f"SELECT ts, value, value_text FROM {table} WHERE vin = $1 AND signal = '{signal}' "
        "ORDER BY ts"
    )


def _narrow_bucket(table: str) -> Callable[[str], str]:
    return lambda signal: (
        "SELECT date_bin('1 minute', ts, '2000-01-01') AS b, min(value), avg(value), max(value) "
        f"FROM {table} WHERE vin = $1 AND signal = '{signal}' GROUP BY b ORDER BY b"
    )


def narrow_layout() -> Layout:
    def to_records(samples: Sequence[Sample]) -> dict[str, list[Record]]:
        rows: list[Record] = []
        for vin, ts_ms, signals in samples:
            rows.extend(_narrow_rows(vin, utc_from_ms(ts_ms), signals))
        return {"n_narrow": rows}

    return Layout(
        "narrow",
        _partitioned("n_narrow", _NARROW_BODY),
        ("n_narrow",),
        to_records,
        {"n_narrow": _NARROW_COLUMNS},
        _narrow_raw("n_narrow"),
        _narrow_bucket("n_narrow"),
    )


def wide_layout(name: str, hot: Sequence[str], *, jsonb_tail: bool) -> Layout:
    wide, tail = f"{name}_wide", f"{name}_tail"
    index = {signal: i for i, signal in enumerate(hot)}
    width = len(hot)
    typed = ", ".join(f"{column_name(s)} {SQL_TYPES[CATALOGUE[s].datatype]}" for s in hot)
    extra = ", extra jsonb" if jsonb_tail else ""
    ddl = _partitioned(
        wide, f"vin text NOT NULL, ts timestamptz NOT NULL, {typed}{extra}, PRIMARY KEY (vin, ts)"
    )
    if not jsonb_tail:
        ddl += _partitioned(tail, _NARROW_BODY)
    wide_columns = (
        "vin",
        "ts",
        *(column_name(s) for s in hot),
        *(("extra",) if jsonb_tail else ()),
    )

    def to_records(samples: Sequence[Sample]) -> dict[str, list[Record]]:
        wide_rows: list[Record] = []
        tail_rows: list[Record] = []
        for vin, ts_ms, signals in samples:
            ts = utc_from_ms(ts_ms)
            values: list[Any] = [None] * width
            rest: dict[str, Any] = {}
            for signal, value in signals.items():
                i = index.get(signal)
                if i is None:
                    rest[signal] = value
                else:
                    values[i] = value
            if jsonb_tail:
                wide_rows.append((vin, ts, *values, json.dumps(rest) if rest else None))
            else:
                wide_rows.append((vin, ts, *values))
                tail_rows.extend(_narrow_rows(vin, ts, rest))
        out = {wide: wide_rows}
        if not jsonb_tail:
            out[tail] = tail_rows
        return out

    def raw(signal: str) -> str:
        if signal in index:
            col = column_name(signal)
            return f"SELECT ts, {col} FROM {wide} WHERE vin = $1 AND {col} IS NOT NULL ORDER BY ts"
        if jsonb_tail:
            return (
                f"SELECT ts, extra -> '{signal}' FROM {wide} WHERE vin = $1 "
                f"AND extra ? '{signal}' ORDER BY ts"
            )
        return _narrow_raw(tail)(signal)

    def bucket(signal: str) -> str:
        if signal in index:
            col = column_name(signal)
            return (
                "SELECT date_bin('1 minute', ts, '2000-01-01') AS b, "
                f"min({col}), avg({col}), max({col}) FROM {wide} WHERE vin = $1 "
                f"AND {col} IS NOT NULL GROUP BY b ORDER BY b"
            )
        if jsonb_tail:
            v = f"(extra ->> '{signal}')::float8"
            return (
                "SELECT date_bin('1 minute', ts, '2000-01-01') AS b, "
                f"min({v}), avg({v}), max({v}) FROM {wide} WHERE vin = $1 "
                f"AND extra ? '{signal}' GROUP BY b ORDER BY b"
            )
        return _narrow_bucket(tail)(signal)

    columns = {wide: wide_columns}
    tables: tuple[str, ...] = (wide,)
    if not jsonb_tail:
        columns[tail] = _NARROW_COLUMNS
        tables = (wide, tail)
    return Layout(name, ddl, tables, to_records, columns, raw, bucket)


def layouts() -> list[Layout]:
    catalogue_columns = [s.name for s in CATALOGUE.values() if s.datatype is not Datatype.STRING]
    return [
        narrow_layout(),
        wide_layout("wide_all", catalogue_columns, jsonb_tail=False),
        wide_layout("wide_hot", HOT_SUBSET, jsonb_tail=False),
        wide_layout("wide_jsonb", catalogue_columns, jsonb_tail=True),
    ]


@dataclass
class LayoutResult:
    name: str
    values: int
    rows: int
    write_s: float
    build_s: float
    bytes_on_disk: int
    raw_hot_ms: float
    bucket_hot_ms: float
    raw_tail_ms: float
    bucket_tail_ms: float

    @property
    def values_per_s(self) -> float:
        return self.values / self.write_s

    @property
    def bytes_per_value(self) -> float:
        return self.bytes_on_disk / self.values


async def _time_query(conn: asyncpg.Connection, sql: str, vins: Sequence[str]) -> float:
    """Median milliseconds of ``sql`` over several vehicles (after one warm-up)."""
    await conn.fetch(sql, vins[0])
    times = []
    for vin in vins:
        started = time.perf_counter()
        await conn.fetch(sql, vin)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(
    conn: asyncpg.Connection, layout: Layout, samples: Sequence[Sample]
) -> LayoutResult:
    await conn.execute(layout.ddl)
    values = sum(len(s[2]) for s in samples)
    rows = 0
    build_s = write_s = 0.0
    for start in range(0, len(samples), BATCH_SAMPLES):
        batch = samples[start : start + BATCH_SAMPLES]
        started = time.perf_counter()
        records = layout.to_records(batch)
        built = time.perf_counter()
        async with conn.transaction():
            for table, table_rows in records.items():
                if table_rows:
                    await conn.copy_records_to_table(
                        table, records=table_rows, columns=layout.columns[table]
                    )
        build_s += built - started
        write_s += time.perf_counter() - started
        rows += sum(len(r) for r in records.values())
    size = 0
    for table in layout.tables:
        await conn.execute(f"VACUUM ANALYZE {table}")
        size += await conn.fetchval(f"SELECT pg_total_relation_size('{table}_p')")
    vins = sorted({s[0] for s in samples})[:QUERY_VEHICLES]
    return LayoutResult(
        name=layout.name,
        values=values,
        rows=rows,
        write_s=write_s,
        build_s=build_s,
        bytes_on_disk=size,
        raw_hot_ms=await _time_query(conn, layout.raw_query(HOT_SIGNAL), vins),
        bucket_hot_ms=await _time_query(conn, layout.bucket_query(HOT_SIGNAL), vins),
        raw_tail_ms=await _time_query(conn, layout.raw_query(TAIL_SIGNAL), vins),
        bucket_tail_ms=await _time_query(conn, layout.bucket_query(TAIL_SIGNAL), vins),
    )


async def run(vehicles: int, minutes: int, progress: Callable[[str], None]) -> list[LayoutResult]:
    progress(f"simulating {vehicles} cars x {minutes} min at 1 Hz ...")
    samples = generate(vehicles, minutes)
    progress(f"{len(samples):,} samples, {sum(len(s[2]) for s in samples):,} values")
    with tempfile.TemporaryDirectory(prefix="fleetlink-schema-") as workdir:
        server = EmbeddedPostgres(Path(workdir) / "pg", PostgresOptions(fsync=False))
        server.start()
        try:
            conn: asyncpg.Connection = await asyncpg.connect(server.dsn("postgres"))
            try:
                results = []
                for layout in layouts():
                    await conn.execute("CHECKPOINT")
                    result = await measure(conn, layout, samples)
                    progress(f"{layout.name}: {result.values_per_s:,.0f} values/s")
                    results.append(result)
                return results
            finally:
                await conn.close()
        finally:
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.schema_layouts", description=__doc__)
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    def progress(line: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {line}", flush=True)

    results = asyncio.run(run(args.vehicles, args.minutes, progress if not args.json else print))
    if args.json:
        print(
            json.dumps(
                [
                    r.__dict__
                    | {"values_per_s": r.values_per_s, "bytes_per_value": r.bytes_per_value}
                    for r in results
                ]
            )
        )
        return 0
    base = results[0]
    print(
        f"\n{'layout':<11} {'values/s':>10} {'x narrow':>8} {'build s':>8} {'B/value':>8} "
        f"{'raw hot':>8} {'1m hot':>8} {'raw tail':>9} {'1m tail':>8}  (query ms, median)"
    )
    for r in results:
        print(
            f"{r.name:<11} {r.values_per_s:>10,.0f} {r.values_per_s / base.values_per_s:>8.2f} "
            f"{r.build_s:>8.2f} {r.bytes_per_value:>8.1f} {r.raw_hot_ms:>8.2f} "
            f"{r.bucket_hot_ms:>8.2f} {r.raw_tail_ms:>9.2f} {r.bucket_tail_ms:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
