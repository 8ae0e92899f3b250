"""The limit ingest is measured against: the rows ingest stored, written again with nothing but
asyncpg's ``copy_records_to_table`` straight into the same ``telemetry`` table (same partitions,
same primary key) of the same database, right after the ingest run.

The committed rows are first set aside in a temporary table in time order (the order ingest
received them), ``telemetry`` is truncated, and the rows are streamed back from a cursor and
COPYed in chunks of a fixed size, each chunk its own transaction. Only the COPY calls are timed
(client-side encoding included, as ingest pays it too); reading the chunks is not. Several chunk
sizes are tried, each on an emptied table; the fastest is the limit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

COPY_CHUNK_ROWS: tuple[int, ...] = (10_000, 100_000)
_COLUMNS = ("vin", "signal", "ts", "value", "value_text")
_SET_ASIDE = """
CREATE TEMP TABLE bench_copy_source AS
SELECT vin, signal, ts, value, value_text FROM telemetry ORDER BY ts, vin, signal
"""


@dataclass(frozen=True)
class CopyRun:
    chunk_rows: int
    rows: int
    seconds: float

    @property
    def values_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


async def measure_copy_limit(
    dsn: str, chunk_sizes: Sequence[int] = COPY_CHUNK_ROWS
) -> list[CopyRun]:
    """One :class:`CopyRun` per chunk size. Leaves ``telemetry`` holding the same rows."""
    reader: asyncpg.Connection = await asyncpg.connect(dsn)
    writer: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        await reader.execute(_SET_ASIDE)
        total: int = await reader.fetchval("SELECT count(*) FROM bench_copy_source")
        runs: list[CopyRun] = []
        for chunk_rows in chunk_sizes:
            await reader.execute("TRUNCATE telemetry")
            await reader.execute("CHECKPOINT")  # both passes start from the same state
            seconds = 0.0
            async with reader.transaction():
                cursor = await reader.cursor(
                    "SELECT vin, signal, ts, value, value_text FROM bench_copy_source"
                )
                while records := await cursor.fetch(chunk_rows):
                    started = time.perf_counter()
                    await writer.copy_records_to_table(
                        "telemetry", records=records, columns=_COLUMNS
                    )
                    seconds += time.perf_counter() - started
            copied: int = await reader.fetchval("SELECT count(*) FROM telemetry")
            if copied != total:
                raise RuntimeError(f"COPY limit: {copied} rows in telemetry, expected {total}")
            runs.append(CopyRun(chunk_rows, total, seconds))
        return runs
    finally:
        await reader.close()
        await writer.close()
