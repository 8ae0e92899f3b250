"""Telemetry history: raw samples, or min/avg/max per time bucket.

Two storage paths, one answer. Under TimescaleDB the 1-minute and 1-hour buckets come from the
continuous aggregates ``telemetry_1m`` / ``telemetry_1h`` of the wide table and
``telemetry_tail_1m`` / ``telemetry_tail_1h`` of the long tail (real-time: recent rows
included); on native partitions the same buckets are computed with ``date_bin`` over the raw
rows. A catalogue signal is read from its column of the wide table (ADR 0005), any other signal
from the long tail. The range
is widened to whole buckets on both paths, because a continuous aggregate can only answer for
whole buckets: a bucket is either entirely in the answer or not at all.

``time_bucket``'s default origin (2000-01-03) and ``date_bin``'s origin used here (2000-01-01)
give the same boundaries for minute and hour buckets, which divide a day evenly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import asyncpg

from ingest.layout import COLUMNS, WideColumn
from ingest.queries import restore_value


class Bucket(StrEnum):
    MINUTE = "1m"
    HOUR = "1h"

    @property
    def width(self) -> timedelta:
        return timedelta(minutes=1) if self is Bucket.MINUTE else timedelta(hours=1)

    @property
    def aggregate(self) -> str:
        """The continuous aggregate of the wide table holding these buckets (TimescaleDB)."""
        return f"telemetry_{self.value}"

    @property
    def tail_aggregate(self) -> str:
        """The same for the long tail."""
        return f"telemetry_tail_{self.value}"


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def align_down(ts: datetime, width: timedelta) -> datetime:
    return _EPOCH + ((ts - _EPOCH) // width) * width


def align_up(ts: datetime, width: timedelta) -> datetime:
    down = align_down(ts, width)
    return down if down == ts else down + width


@dataclass(frozen=True, slots=True)
class RawPoint:
    signal: str
    ts: datetime
    value: bool | int | float | str | None


@dataclass(frozen=True, slots=True)
class BucketPoint:
    signal: str
    bucket: datetime
    min: float
    avg: float
    max: float
    samples: int


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    vin: str
    signals: tuple[str, ...]
    start: datetime
    end: datetime
    bucket: Bucket | None
    limit: int


@dataclass(frozen=True, slots=True)
class History:
    start: datetime  # as answered: widened to whole buckets when bucketed
    end: datetime
    points: list[RawPoint] | list[BucketPoint]
    truncated: bool  # some signal had more than ``limit`` points in the range


# Long tail: one LATERAL subquery per requested signal, so the limit is per signal (no signal
# can starve the others) and each uses the (vin, signal, ts) primary-key index.
_TAIL_RAW = """
SELECT s.signal, t.ts, t.value, t.value_text
FROM unnest($2::text[]) AS s(signal)
CROSS JOIN LATERAL (
    SELECT ts, value, value_text FROM telemetry_tail
    WHERE vin = $1 AND signal = s.signal AND ts >= $3 AND ts < $4
    ORDER BY ts LIMIT $5
) AS t
ORDER BY s.signal, t.ts
"""
_TAIL_NATIVE_BUCKETS = """
SELECT s.signal, t.bucket, t.min_value, t.avg_value, t.max_value, t.samples
FROM unnest($2::text[]) AS s(signal)
CROSS JOIN LATERAL (
    SELECT date_bin($6::interval, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           min(value) AS min_value, avg(value) AS avg_value, max(value) AS max_value,
           count(value) AS samples
    FROM telemetry_tail
    WHERE vin = $1 AND signal = s.signal AND ts >= $3 AND ts < $4 AND value IS NOT NULL
    GROUP BY 1 ORDER BY 1 LIMIT $5
) AS t
ORDER BY s.signal, t.bucket
"""
_TAIL_AGGREGATE_BUCKETS = """
SELECT s.signal, t.bucket, t.min_value, t.avg_value, t.max_value, t.samples
FROM unnest($2::text[]) AS s(signal)
CROSS JOIN LATERAL (
    SELECT bucket, min_value, avg_value, max_value, samples FROM {view}
    WHERE vin = $1 AND signal = s.signal AND bucket >= $3 AND bucket < $4
    ORDER BY bucket LIMIT $5
) AS t
ORDER BY s.signal, t.bucket
"""


# Wide table: one query per signal on its column, served by the (vin, ts) primary key. The
# column names come from ingest.layout, never from the request.
def _wide_raw(column: WideColumn) -> str:
    return (
        f"SELECT $5::text AS signal, ts, {column.name} AS value FROM telemetry"
        f" WHERE vin = $1 AND ts >= $2 AND ts < $3 AND {column.name} IS NOT NULL"
        " ORDER BY ts LIMIT $4"
    )


def _wide_native_buckets(column: WideColumn) -> str:
    value = column.as_float
    return (
        "SELECT $5::text AS signal,"
        " date_bin($6::interval, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,"
        f" min({value}) AS min_value, avg({value}) AS avg_value, max({value}) AS max_value,"
        f" count({column.name}) AS samples FROM telemetry"
        f" WHERE vin = $1 AND ts >= $2 AND ts < $3 AND {column.name} IS NOT NULL"
        " GROUP BY 2 ORDER BY 2 LIMIT $4"
    )


def _wide_aggregate_buckets(column: WideColumn, view: str) -> str:
    name = column.name
    return (
        f"SELECT $5::text AS signal, bucket, {name}_min AS min_value, {name}_avg AS avg_value,"
        f" {name}_max AS max_value, {name}_n AS samples FROM {view}"
        f" WHERE vin = $1 AND bucket >= $2 AND bucket < $3 AND {name}_n > 0"
        " ORDER BY bucket LIMIT $4"
    )


def _cut(rows: list[asyncpg.Record], limit: int) -> tuple[list[asyncpg.Record], bool]:
    """Keep at most ``limit`` rows per signal (one more was fetched to detect truncation)."""
    kept: list[asyncpg.Record] = []
    counts: dict[str, int] = {}
    truncated = False
    for row in rows:
        seen = counts.get(row["signal"], 0)
        if seen < limit:
            kept.append(row)
        else:
            truncated = True
        counts[row["signal"]] = seen + 1
    return kept, truncated


class HistoryReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._has_aggregates: bool | None = None

    async def _aggregates_available(self, conn: asyncpg.Connection) -> bool:
        if self._has_aggregates is None:
            self._has_aggregates = bool(
                await conn.fetchval("SELECT to_regclass('telemetry_1m') IS NOT NULL")
            )
        return self._has_aggregates

    async def read(self, query: HistoryQuery) -> History:
        # One row more than the limit tells whether the answer was cut.
        wide = sorted((s for s in query.signals if s in COLUMNS), key=str)
        tail = [s for s in query.signals if s not in COLUMNS]
        fetch = query.limit + 1
        async with self._pool.acquire() as conn:
            if query.bucket is None:
                rows = await _fetch_each(
                    conn, wide, _wide_raw, (query.vin, query.start, query.end, fetch)
                )
                if tail:
                    rows += await conn.fetch(
                        _TAIL_RAW, query.vin, tail, query.start, query.end, fetch
                    )
                rows.sort(key=lambda r: r["signal"])  # stable: each signal stays in time order
                kept, truncated = _cut(rows, query.limit)  # the limit is per signal
                raw = [RawPoint(r["signal"], r["ts"], _raw_value(r)) for r in kept]
                return History(query.start, query.end, raw, truncated)
            width = query.bucket.width
            start, end = align_down(query.start, width), align_up(query.end, width)
            bucketed = (query.vin, start, end, fetch)
            if await self._aggregates_available(conn):
                view = query.bucket.aggregate
                rows = await _fetch_each(
                    conn, wide, lambda c: _wide_aggregate_buckets(c, view), bucketed
                )
                if tail:
                    sql = _TAIL_AGGREGATE_BUCKETS.format(view=query.bucket.tail_aggregate)
                    rows += await conn.fetch(sql, query.vin, tail, start, end, fetch)
            else:
                rows = await _fetch_each(conn, wide, _wide_native_buckets, bucketed, width)
                if tail:
                    rows += await conn.fetch(
                        _TAIL_NATIVE_BUCKETS, query.vin, tail, start, end, fetch, width
                    )
        rows.sort(key=lambda r: r["signal"])
        kept, truncated = _cut(rows, query.limit)
        buckets = [
            BucketPoint(
                r["signal"],
                r["bucket"],
                r["min_value"],
                r["avg_value"],
                r["max_value"],
                int(r["samples"]),
            )
            for r in kept
        ]
        return History(start, end, buckets, truncated)


async def _fetch_each(
    conn: asyncpg.Connection,
    signals: Sequence[str],
    sql_for: Callable[[WideColumn], str],
    args: tuple[str, datetime, datetime, int],
    *extra: object,
) -> list[asyncpg.Record]:
    """One query per wide signal: ``args`` are ``$1..$4`` (vin, start, end, limit), ``$5``
    names the signal in the rows, ``$6...`` are ``extra``."""
    rows: list[asyncpg.Record] = []
    for signal in signals:
        rows += await conn.fetch(sql_for(COLUMNS[signal]), *args, signal, *extra)
    return rows


def _raw_value(row: asyncpg.Record) -> bool | int | float | str | None:
    if "value_text" in row:  # the long tail: undo its storage encoding
        return restore_value(row["signal"], row["value"], row["value_text"])
    value: bool | int | float | None = row["value"]  # a typed column: already the right type
    return value
