"""The limit ingest is measured against: the samples ingest stored, written again with nothing
but asyncpg's ``copy_records_to_table`` straight into the same tables (``telemetry`` and
``telemetry_tail``: same partitions, same primary keys) of the same database, right after the
ingest run.

The committed rows are first set aside in temporary tables in time order (the order ingest
received them), both tables are truncated, and the rows are streamed back from a cursor and
COPYed in chunks of a fixed number of rows, each chunk its own transaction. Only the COPY calls
are timed (client-side encoding included, as ingest pays it too); reading the chunks is not.
Several chunk sizes are tried, each on emptied tables; the fastest is the limit. The rate is in
signal values (what ingest's rate counts), not rows: a wide row holds a whole sample.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from ingest.layout import TAIL_COLUMNS, TELEMETRY_COLUMNS

COPY_CHUNK_ROWS: tuple[int, ...] = (1_000, 10_000)
# (table, its set-aside copy, columns, the order ingest wrote the rows in)
_TABLES = (
    ("telemetry", "bench_copy_wide", TELEMETRY_COLUMNS, "ts, vin"),
    ("telemetry_tail", "bench_copy_tail", TAIL_COLUMNS, "ts, vin, signal"),
)
_VALUES = "SELECT count(*) FROM telemetry_values"


@dataclass(frozen=True)
class CopyRun:
    chunk_rows: int
    rows: int  # signal values written (as ingest counts them)
    seconds: float

    @property
    def values_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


async def _copy_back(
    reader: asyncpg.Connection, writer: asyncpg.Connection, chunk_rows: int
) -> float:
    seconds = 0.0
    for table, source, columns, order in _TABLES:
        async with reader.transaction():
            cursor = await reader.cursor(f"SELECT * FROM {source} ORDER BY {order}")
            while records := await cursor.fetch(chunk_rows):
                started = time.perf_counter()
                await writer.copy_records_to_table(table, records=records, columns=columns)
                seconds += time.perf_counter() - started
    return seconds


async def measure_copy_limit(
    dsn: str, chunk_sizes: Sequence[int] = COPY_CHUNK_ROWS
) -> list[CopyRun]:
    """One :class:`CopyRun` per chunk size. Leaves the tables holding the same rows."""
    reader: asyncpg.Connection = await asyncpg.connect(dsn)
    writer: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        for table, source, _, _ in _TABLES:
            await reader.execute(f"CREATE TEMP TABLE {source} AS SELECT * FROM {table}")
        values: int = await reader.fetchval(_VALUES)
        runs: list[CopyRun] = []
        for chunk_rows in chunk_sizes:
            await reader.execute("TRUNCATE telemetry, telemetry_tail")
            await reader.execute("CHECKPOINT")  # every pass starts from the same state
            seconds = await _copy_back(reader, writer, chunk_rows)
            copied: int = await reader.fetchval(_VALUES)
            if copied != values:
                raise RuntimeError(f"COPY limit: {copied} values stored again, expected {values}")
            runs.append(CopyRun(chunk_rows, values, seconds))
        return runs
    finally:
        await reader.close()
        await writer.close()
