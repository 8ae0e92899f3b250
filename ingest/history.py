"""Telemetry history: raw samples, or min/avg/max per time bucket.

Two storage paths, one answer. Under TimescaleDB the 1-minute and 1-hour buckets come from the
continuous aggregates ``telemetry_1m`` / ``telemetry_1h`` (real-time: recent rows included);
on native partitions the same buckets are computed with ``date_bin`` over the raw rows. The range
is widened to whole buckets on both paths, because a continuous aggregate can only answer for
whole buckets: a bucket is either entirely in the answer or not at all.

``time_bucket``'s default origin (2000-01-03) and ``date_bin``'s origin used here (2000-01-01)
give the same boundaries for minute and hour buckets, which divide a day evenly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import asyncpg

from ingest.queries import restore_value


class Bucket(StrEnum):
    MINUTE = "1m"
    HOUR = "1h"

    @property
    def width(self) -> timedelta:
        return timedelta(minutes=1) if self is Bucket.MINUTE else timedelta(hours=1)

    @property
    def aggregate(self) -> str:
        """The continuous aggregate holding these buckets under TimescaleDB."""
        return "telemetry_1m" if self is Bucket.MINUTE else "telemetry_1h"


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


# One LATERAL subquery per requested signal: the limit is per signal (no signal can starve the
# others) and each uses the (vin, signal, ts) primary-key index.
_RAW = """
SELECT s.signal, t.ts, t.value, t.value_text
FROM unnest($2::text[]) AS s(signal)
CROSS JOIN LATERAL (
    SELECT ts, value, value_text FROM telemetry
    WHERE vin = $1 AND signal = s.signal AND ts >= $3 AND ts < $4
    ORDER BY ts LIMIT $5
) AS t
ORDER BY s.signal, t.ts
"""
_NATIVE_BUCKETS = """
SELECT s.signal, t.bucket, t.min_value, t.avg_value, t.max_value, t.samples
FROM unnest($2::text[]) AS s(signal)
CROSS JOIN LATERAL (
    SELECT date_bin($6::interval, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           min(value) AS min_value, avg(value) AS avg_value, max(value) AS max_value,
           count(value) AS samples
    FROM telemetry
    WHERE vin = $1 AND signal = s.signal AND ts >= $3 AND ts < $4 AND value IS NOT NULL
    GROUP BY 1 ORDER BY 1 LIMIT $5
) AS t
ORDER BY s.signal, t.bucket
"""
_AGGREGATE_BUCKETS = """
SELECT s.signal, t.bucket, t.min_value, t.avg_value, t.max_value, t.samples
FROM unnest($2::text[]) AS s(signal)
CROSS JOIN LATERAL (
    SELECT bucket, min_value, avg_value, max_value, samples FROM {view}
    WHERE vin = $1 AND signal = s.signal AND bucket >= $3 AND bucket < $4
    ORDER BY bucket LIMIT $5
) AS t
ORDER BY s.signal, t.bucket
"""


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
        async with self._pool.acquire() as conn:
            if query.bucket is None:
                rows = await conn.fetch(
                    _RAW, query.vin, list(query.signals), query.start, query.end, query.limit + 1
                )
                raw = [
                    RawPoint(
                        r["signal"],
                        r["ts"],
                        restore_value(r["signal"], r["value"], r["value_text"]),
                    )
                    for r in rows[: query.limit]
                ]
                return History(query.start, query.end, raw, len(rows) > query.limit)
            width = query.bucket.width
            start, end = align_down(query.start, width), align_up(query.end, width)
            args: Sequence[object] = (query.vin, list(query.signals), start, end, query.limit + 1)
            if await self._aggregates_available(conn):
                sql = _AGGREGATE_BUCKETS.format(view=query.bucket.aggregate)
                rows = await conn.fetch(sql, *args)
            else:
                rows = await conn.fetch(_NATIVE_BUCKETS, *args, width)
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
