"""The telemetry store adapter: one committed transaction per batch (asyncpg).

A batch's samples become one wide row each in ``telemetry`` (every catalogue signal in its typed
column) plus one narrow row per long-tail value in ``telemetry_tail`` (ADR 0005). Both are
COPYed straight in under a savepoint; if that collides with rows already stored (a resend
after a lost PUBACK, which is rare) the batch goes through per-transaction staging tables
instead and is merged: a value already stored for a (VIN, signal, ts) is kept, a missing one is
filled in, so at-least-once delivery stores exactly once. The latest values, dead letters and
sequence bookkeeping commit in the same transaction, so a batch is either wholly stored or not
at all, and only then acknowledged to the broker.

Where COPY FROM STDIN is not available (the PGlite TimescaleDB server the TimescaleDB path is
tested against refuses it with SQLSTATE 0A000) the staging tables are filled with one
``INSERT ... SELECT FROM unnest(...)`` each instead; everything after staging is the same. With
``bulk="auto"`` (the default) the store tries COPY, and on FeatureNotSupportedError switches to
unnest for good, logs it once and retries the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
from asyncpg.exceptions._base import DataError as ClientDataError

from ingest.blocks import TailBlock, WideBlock, copy_payload
from ingest.errors import StoreDataError, StoreUnavailableError
from ingest.events import VehicleEvent
from ingest.layout import (
    COLUMNS,
    CONVERTERS,
    STATE_COLUMNS,
    TAIL_COLUMNS,
    TELEMETRY_COLUMNS,
    WIDE_COLUMNS,
)
from ingest.retention import drop_expired_partitions, partition_day
from ingest.validation import Reading, Rejection
from protocol.clock import utc_from_ms

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
# Everything asyncpg raises when the server is down, restarting, or too slow.
STORE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
# SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation), and asyncpg's
# own encoding failures (a value that does not fit its column type): the data is wrong, not the
# database; the same batch would fail again however often it is retried.
_DATA_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ClientDataError,
)
_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS telemetry_stage (LIKE telemetry) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS telemetry_tail_stage (LIKE telemetry_tail) ON COMMIT DELETE ROWS
"""


def _unnest_arguments(sql_types: Sequence[str]) -> str:
    """``$1::t1[], $2::t2[], ...``: one array parameter per column, for ``unnest(...)``."""
    return ", ".join(f"${i}::{sql_type}[]" for i, sql_type in enumerate(sql_types, start=1))


_WIDE_UNNEST = "INSERT INTO telemetry_stage SELECT * FROM unnest({})".format(
    _unnest_arguments(("text", "timestamptz", *(c.sql_type for c in WIDE_COLUMNS)))
)
_TAIL_UNNEST = """
INSERT INTO telemetry_tail_stage
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[])
"""
# A value already stored wins (as ON CONFLICT DO NOTHING would per value); a resend of the same
# sample changes nothing and so writes nothing: the WHERE clause skips rows with nothing to fill.
_MERGE_WIDE = """
INSERT INTO telemetry AS t SELECT * FROM telemetry_stage
ON CONFLICT (vin, ts) DO UPDATE SET {}
WHERE {}
""".format(
    ", ".join(f"{c.name} = coalesce(t.{c.name}, excluded.{c.name})" for c in WIDE_COLUMNS),
    " OR ".join(f"(t.{c.name} IS NULL AND excluded.{c.name} IS NOT NULL)" for c in WIDE_COLUMNS),
)
_MERGE_TAIL = """
INSERT INTO telemetry_tail SELECT * FROM telemetry_tail_stage ON CONFLICT DO NOTHING
"""
# The latest value and time of each signal. Wide signals: one row per vehicle, a column keeps
# the stored value unless the batch brings one at least as new (GREATEST ignores the NULL of a
# signal the batch does not carry). The long tail: one row per (vin, signal), the newest of the
# batch picked in Python (ON CONFLICT DO UPDATE must not meet the same key twice).
_STATE_ASSIGNMENTS = ", ".join(
    f"{c.name} = CASE WHEN excluded.{c.name}_ts >= s.{c.name}_ts OR s.{c.name}_ts IS NULL"
    f" THEN excluded.{c.name} ELSE s.{c.name} END,"
    f" {c.name}_ts = GREATEST(s.{c.name}_ts, excluded.{c.name}_ts)"
    for c in WIDE_COLUMNS
)
_UPSERT_STATE = """
INSERT INTO vehicle_state_wide AS s ({columns}, updated_at)
SELECT *, now() FROM unnest({arrays})
ON CONFLICT (vin) DO UPDATE SET {assignments}, updated_at = excluded.updated_at
""".format(
    columns=", ".join(STATE_COLUMNS),
    arrays=_unnest_arguments(
        ("text", *(t for c in WIDE_COLUMNS for t in (c.sql_type, "timestamptz")))
    ),
    assignments=_STATE_ASSIGNMENTS,
)
# With COPY the rows go through a staging table instead: asyncpg encodes an array parameter
# element by element with an isinstance check on each, which cost more than the upsert itself.
_STATE_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS vehicle_state_stage ON COMMIT DELETE ROWS
AS SELECT {} FROM vehicle_state_wide WITH NO DATA
""".format(", ".join(STATE_COLUMNS))
_UPSERT_STATE_FROM_STAGE = """
INSERT INTO vehicle_state_wide AS s ({columns}, updated_at)
SELECT {columns}, now() FROM vehicle_state_stage ORDER BY vin
ON CONFLICT (vin) DO UPDATE SET {assignments}, updated_at = excluded.updated_at
""".format(columns=", ".join(STATE_COLUMNS), assignments=_STATE_ASSIGNMENTS)
_UPSERT_TAIL_STATE = """
INSERT INTO vehicle_state_tail AS s (vin, signal, ts, value, value_text, updated_at)
SELECT u.vin, u.signal, u.ts, u.value, u.value_text, now()
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[])
    AS u(vin, signal, ts, value, value_text)
ON CONFLICT (vin, signal) DO UPDATE
SET ts = excluded.ts, value = excluded.value, value_text = excluded.value_text,
    updated_at = excluded.updated_at
WHERE excluded.ts >= s.ts
"""
_INSERT_EVENTS = """
INSERT INTO vehicle_events (vin, seq, ts, type, code, active, body)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[],
                     $6::boolean[], $7::jsonb[])
ON CONFLICT (vin, seq, ts) DO NOTHING
"""
_EXPIRE_EVENTS = "DELETE FROM vehicle_events WHERE ts < $1"
_INSERT_DEAD_LETTERS = """
INSERT INTO dead_letters (vin, topic, reason, detail, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[])
"""
_UPSERT_PRESENCE = """
INSERT INTO vehicle_presence AS p (vin, online, changed_at, last_connected_at,
                                   last_disconnected_at)
SELECT vin, online, at, CASE WHEN online THEN at END, CASE WHEN NOT online THEN at END
FROM unnest($1::text[], $2::boolean[], $3::timestamptz[]) AS u(vin, online, at)
ON CONFLICT (vin) DO UPDATE
SET online = excluded.online, changed_at = excluded.changed_at,
    last_connected_at = coalesce(excluded.last_connected_at, p.last_connected_at),
    last_disconnected_at = coalesce(excluded.last_disconnected_at, p.last_disconnected_at)
WHERE excluded.changed_at >= p.changed_at
"""
_BOOTSTRAP_PRESENCE = """
INSERT INTO vehicle_presence (vin, online, changed_at, last_connected_at, last_disconnected_at)
SELECT vin, online, at, CASE WHEN online THEN at END, CASE WHEN NOT online THEN at END
FROM unnest($1::text[], $2::boolean[], $3::timestamptz[]) AS u(vin, online, at)
ON CONFLICT (vin) DO NOTHING
"""
# Gaps: seq jumped past last+1. Duplicates: a seq at or below the last one seen (a resend).
# The counting happens in Python against the stored last_seq, read under a row lock (FOR UPDATE)
# so two workers on a shared subscription cannot both count from the same starting point.
_LOCK_SEQUENCES = """
SELECT vin, last_seq FROM ingest_sequences WHERE vin = ANY($1::text[]) ORDER BY vin FOR UPDATE
"""
_UPSERT_SEQUENCES = """
INSERT INTO ingest_sequences AS s (vin, last_seq, gaps, duplicates)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
ON CONFLICT (vin) DO UPDATE
SET last_seq = GREATEST(s.last_seq, excluded.last_seq),
    gaps = s.gaps + excluded.gaps,
    duplicates = s.duplicates + excluded.duplicates,
    updated_at = now()
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    vin: str | None
    topic: str
    rejection: Rejection


@dataclass(slots=True)
class SequenceStats:
    first_seq: int
    last_seq: int
    gaps: int = 0
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    vin: str
    online: bool
    at: datetime
    # A retained presence is old news replayed on (re)subscribe: it only fills a gap.
    retained: bool


_Row = tuple[str, str, datetime, float | None, str | None]
_WIDTH = len(WIDE_COLUMNS)


@dataclass(slots=True)
class Batch:
    """What one transaction stores."""

    # (VIN, ts ms) -> the sample's wide row [vin, ts, value per column...]: the messages of a
    # batch that share a sample time are merged here (COPY cannot meet a key twice).
    wide: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    tail: list[_Row] = field(default_factory=list)
    # Samples the fast path took whole (``ingest.fast_telemetry``), as column blocks; their
    # (VIN, ts) keys meet neither each other nor ``wide``'s.
    blocks: list[WideBlock] = field(default_factory=list)
    tail_blocks: list[TailBlock] = field(default_factory=list)
    # VIN -> [vin, value, ts, value, ts, ...]: each wide signal's newest value in the batch.
    state: dict[str, list[Any]] = field(default_factory=dict)
    # (VIN, signal) -> the newest long-tail reading of the batch.
    tail_state: dict[tuple[str, str], _Row] = field(default_factory=dict)
    readings: int = 0  # values accepted into the batch
    positions_withheld: int = 0  # position values left out: no location consent
    events: list[tuple[str, VehicleEvent]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    sequences: dict[str, list[int]] = field(default_factory=dict)
    presence: list[PresenceUpdate] = field(default_factory=list)
    samples: int = 0  # samples the batch's messages carried, stored or not
    fast_messages: int = 0  # telemetry messages the fast path took whole
    min_ts_ms: int | None = None
    max_ts_ms: int | None = None

    def add_readings(self, vin: str, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        wide = self.wide
        state = self._state_of(vin)
        row: list[Any] = []
        row_ts_ms: int | None = None
        for r in readings:
            ts_ms = r.ts_ms
            if ts_ms != row_ts_ms:  # a sample's readings come together: one lookup per sample
                row_ts_ms = ts_ms
                key = (vin, ts_ms)
                found = wide.get(key)
                if found is None:
                    found = wide[key] = [vin, utc_from_ms(ts_ms), *([None] * _WIDTH)]
                    self._widen_span(ts_ms, ts_ms)
                row = found
            ts: datetime = row[1]
            column = COLUMNS.get(r.signal)
            if column is None:
                self._add_tail(vin, r, ts)
            elif r.value is not None:
                position = column.position
                value = CONVERTERS[position](r.value)
                if row[2 + position] is None:
                    # The first value of a (VIN, signal, ts) wins, as it does against stored rows.
                    row[2 + position] = value
                newest_ts = state[2 + 2 * position]
                if newest_ts is None or ts >= newest_ts:
                    state[1 + 2 * position] = value
                    state[2 + 2 * position] = ts
        self.readings += len(readings)

    def add_block(self, block: WideBlock) -> None:
        """Add samples the fast path took; none of their (VIN, ts) may be in the batch yet."""
        if not len(block):
            return
        self.blocks.append(block)
        self.readings += block.values.size
        self._widen_span(int(block.ts_ms.min()), int(block.ts_ms.max()))
        positions = block.positions
        for vin, (ts, values) in block.newest_per_vin().items():
            state = self._state_of(vin)
            for position, value in zip(positions, values, strict=True):
                newest_ts = state[2 + 2 * position]
                if newest_ts is None or ts >= newest_ts:
                    state[1 + 2 * position] = value
                    state[2 + 2 * position] = ts

    def add_tail_block(self, block: TailBlock) -> None:
        """Add long-tail values of samples whose wide rows are in ``blocks``."""
        self.tail_blocks.append(block)
        self.readings += len(block)
        for vin, row in block.newest_per_vin().items():
            newest = self.tail_state.get((vin, block.signal))
            if newest is None or row[2] >= newest[2]:
                self.tail_state[(vin, block.signal)] = row

    def _add_tail(self, vin: str, r: Reading, ts: datetime) -> None:
        row = (vin, r.signal, ts, r.value, r.text)
        self.tail.append(row)
        newest = self.tail_state.get((vin, r.signal))
        if newest is None or ts >= newest[2]:
            self.tail_state[(vin, r.signal)] = row

    def _state_of(self, vin: str) -> list[Any]:
        state = self.state.get(vin)
        if state is None:
            state = self.state[vin] = [vin, *([None] * (2 * _WIDTH))]
        return state

    def _widen_span(self, low_ms: int, high_ms: int) -> None:
        if self.min_ts_ms is None or low_ms < self.min_ts_ms:
            self.min_ts_ms = low_ms
        if self.max_ts_ms is None or high_ms > self.max_ts_ms:
            self.max_ts_ms = high_ms

    def wide_rows(self) -> list[list[Any]]:
        """Every sample's wide row, [vin, ts, value or None per column]."""
        rows = list(self.wide.values())
        for block in self.blocks:
            rows.extend(block.rows())
        return rows

    def tail_rows(self) -> list[_Row]:
        """Every long-tail row, (vin, signal, ts, value, text)."""
        rows = list(self.tail)
        for block in self.tail_blocks:
            rows.extend(block.rows())
        return rows

    def wide_samples(self) -> Iterator[tuple[str, int, list[Any]]]:
        """(VIN, ts ms, value or None per wide column) of every sample, in no set order."""
        for (vin, ts_ms), row in self.wide.items():
            yield vin, ts_ms, row[2:]
        for block in self.blocks:
            yield from block.samples()

    @property
    def has_samples(self) -> bool:
        return bool(self.wide or self.blocks)

    def add_seq(self, vin: str, seq: int) -> None:
        self.sequences.setdefault(vin, []).append(seq)


def _sequence_stats(seqs: list[int], stored_last: int | None) -> SequenceStats:
    """Gaps and duplicates of one vehicle's sequence numbers (arrival order), counted from the
    last seq already stored: a redelivered message is a duplicate whatever its batch."""
    stats = SequenceStats(first_seq=seqs[0], last_seq=max(seqs))
    highest = stored_last
    seen: set[int] = set()
    for seq in seqs:
        if seq in seen or (highest is not None and seq <= highest):
            stats.duplicates += 1
        else:
            if highest is not None:
                stats.gaps += seq - highest - 1
            highest = seq
        seen.add(seq)
    if stored_last is not None:
        stats.last_seq = max(stats.last_seq, stored_last)
    return stats


async def _upsert_latest_state(conn: asyncpg.Connection, batch: Batch, *, copy: bool) -> None:
    # Rows in key order: every worker locks them in the same order, so two workers on a shared
    # subscription holding the same vehicles cannot deadlock.
    if batch.state:
        rows = [batch.state[vin] for vin in sorted(batch.state)]
        if copy:
            await conn.execute(_STATE_STAGE_DDL)
            await conn.copy_records_to_table(
                "vehicle_state_stage", records=rows, columns=STATE_COLUMNS
            )
            await conn.execute(_UPSERT_STATE_FROM_STAGE)
        else:
            await conn.execute(_UPSERT_STATE, *(list(c) for c in zip(*rows, strict=True)))
    if batch.tail_state:
        tail = [batch.tail_state[key] for key in sorted(batch.tail_state)]
        await conn.execute(_UPSERT_TAIL_STATE, *(list(c) for c in zip(*tail, strict=True)))


def _latest_presence(updates: list[PresenceUpdate], *, retained: bool) -> list[PresenceUpdate]:
    """The last report per vehicle (arrival order) of one kind: one row per VIN per statement."""
    latest: dict[str, PresenceUpdate] = {}
    for update in updates:
        if update.retained == retained:
            latest[update.vin] = update
    return list(latest.values())


async def _copy_samples(
    conn: asyncpg.Connection, batch: Batch, wide_table: str, tail_table: str
) -> None:
    """COPY the batch's samples: the fast path's blocks in binary form built with numpy (no
    Python object per value), the rows of the full path through asyncpg's record encoder."""
    if batch.blocks:
        await conn.copy_to_table(
            wide_table,
            source=memoryview(copy_payload(batch.blocks)),  # bytes would be taken for a path
            columns=TELEMETRY_COLUMNS,
            format="binary",
        )
    if batch.wide:
        await conn.copy_records_to_table(
            wide_table, records=list(batch.wide.values()), columns=TELEMETRY_COLUMNS
        )
    if batch.tail_blocks:
        await conn.copy_to_table(
            tail_table,
            source=memoryview(copy_payload(batch.tail_blocks)),
            columns=TAIL_COLUMNS,
            format="binary",
        )
    if batch.tail:
        await conn.copy_records_to_table(tail_table, records=batch.tail, columns=TAIL_COLUMNS)


BulkMode = Literal["auto", "copy", "unnest"]


class _CopyUnsupportedError(Exception):
    """COPY was refused in ``auto`` mode: the batch is retried with unnest."""


class TelemetryStore:
    def __init__(
        self, pool: asyncpg.Pool, *, timeout_s: float = 30.0, bulk: BulkMode = "auto"
    ) -> None:
        self._pool = pool
        self._timeout_s = timeout_s
        self._bulk: BulkMode = bulk
        self._days_with_partition: set[int] = set()

    @property
    def bulk(self) -> BulkMode:
        """How readings are staged: ``auto`` until the first batch has shown whether COPY works
        (then ``copy`` or ``unnest``)."""
        return self._bulk

    async def ensure_partitions(self, from_ms: int, to_ms: int) -> None:
        """Create the daily partitions covering [from_ms, to_ms] that are not known yet."""
        days = range(from_ms // DAY_MS, to_ms // DAY_MS + 1)
        missing = [d for d in days if d not in self._days_with_partition]
        if not missing:
            return
        start = utc_from_ms(missing[0] * DAY_MS)
        end = utc_from_ms(missing[-1] * DAY_MS)
        try:
            async with self._pool.acquire() as conn:
                await conn.fetchval("SELECT ingest_ensure_partitions($1, $2)", start, end)
        except STORE_ERRORS as exc:
            raise StoreUnavailableError(f"partitions not created: {exc}") from exc
        self._days_with_partition.update(missing)

    async def apply_retention(self, *, retention_days: int, now_ms: int) -> list[str]:
        """Keep ``retention_days`` of telemetry. Under TimescaleDB the retention and refresh
        policies are set to the window (``ingest_apply_retention``) and its jobs drop chunks;
        on native partitions the day partitions wholly past the window are dropped here.
        Returns the dropped partitions' names."""
        now = utc_from_ms(now_ms)
        try:
            async with self._pool.acquire() as conn:
                if await conn.fetchval("SELECT ingest_apply_retention($1)", retention_days):
                    log.info("TimescaleDB retention policies set to %d days", retention_days)
                dropped = await drop_expired_partitions(
                    conn, retention_days=retention_days, now=now
                )
                await conn.execute(_EXPIRE_EVENTS, now - timedelta(days=retention_days))
        except STORE_ERRORS as exc:
            raise StoreUnavailableError(f"retention not applied: {exc}") from exc
        for name in dropped:
            day = partition_day(name)
            if day is not None:  # always, for names drop_expired_partitions returns
                self._days_with_partition.discard(int(day.timestamp() * 1000) // DAY_MS)
        return dropped

    async def write(self, batch: Batch) -> None:
        """Commit the batch, or raise having committed nothing: StoreDataError when the
        database refused the data itself, StoreUnavailableError otherwise (retry later)."""
        try:
            await asyncio.wait_for(self._write(batch), self._timeout_s)
        except _DATA_ERRORS as exc:
            raise StoreDataError(f"batch refused: {type(exc).__name__}: {exc}") from exc
        except STORE_ERRORS as exc:
            raise StoreUnavailableError(
                f"batch not committed: {type(exc).__name__}: {exc}"
            ) from exc

    async def _stage(self, conn: asyncpg.Connection, batch: Batch) -> None:
        """Fill the (empty, transaction-local) staging tables with the batch's rows."""
        if self._bulk == "unnest":
            wide = batch.wide_rows()
            await conn.execute(_WIDE_UNNEST, *(list(c) for c in zip(*wide, strict=True)))
            tail = batch.tail_rows()
            if tail:
                await conn.execute(_TAIL_UNNEST, *(list(c) for c in zip(*tail, strict=True)))
            return
        try:
            await _copy_samples(conn, batch, "telemetry_stage", "telemetry_tail_stage")
        except asyncpg.FeatureNotSupportedError as exc:
            if self._bulk != "auto":
                raise
            log.warning("COPY refused by the database (%s); staging with INSERT ... unnest", exc)
            self._bulk = "unnest"
            raise _CopyUnsupportedError from exc
        if self._bulk == "auto":
            self._bulk = "copy"

    async def _insert_samples(self, conn: asyncpg.Connection, batch: Batch) -> None:
        """COPY straight into telemetry and telemetry_tail, under a savepoint; only if that
        collides with rows already stored (a redelivery after a lost PUBACK, which is rare) go
        through the staging tables and merge. The benchmark showed the staging hop doubling
        the cost of every batch when it was always taken."""
        if self._bulk == "copy":
            try:
                async with conn.transaction():
                    await _copy_samples(conn, batch, "telemetry", "telemetry_tail")
                return
            except asyncpg.UniqueViolationError:
                log.debug("batch holds samples already stored (a resend): merging via staging")
        await conn.execute(_STAGE_DDL)
        await self._stage(conn, batch)
        await conn.execute(_MERGE_WIDE)
        if batch.tail or batch.tail_blocks:
            await conn.execute(_MERGE_TAIL)

    async def _write(self, batch: Batch) -> None:
        if batch.min_ts_ms is not None and batch.max_ts_ms is not None:
            await self.ensure_partitions(batch.min_ts_ms, batch.max_ts_ms)
        try:
            await self._commit(batch)
        except _CopyUnsupportedError:
            await self._commit(batch)  # the failed transaction was rolled back; now with unnest

    async def _commit(self, batch: Batch) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if batch.has_samples:
                await self._insert_samples(conn, batch)
                await _upsert_latest_state(conn, batch, copy=self._bulk == "copy")
            if batch.events:
                await conn.execute(
                    _INSERT_EVENTS,
                    [vin for vin, _ in batch.events],
                    [e.seq for _, e in batch.events],
                    [utc_from_ms(e.ts_ms) for _, e in batch.events],
                    [e.type for _, e in batch.events],
                    [e.code for _, e in batch.events],
                    [e.active for _, e in batch.events],
                    [e.body for _, e in batch.events],
                )
            if batch.dead_letters:
                await conn.execute(
                    _INSERT_DEAD_LETTERS,
                    [d.vin for d in batch.dead_letters],
                    [d.topic for d in batch.dead_letters],
                    [d.rejection.reason.value for d in batch.dead_letters],
                    [d.rejection.detail for d in batch.dead_letters],
                    [d.rejection.fragment for d in batch.dead_letters],
                )
            for retained, statement in ((False, _UPSERT_PRESENCE), (True, _BOOTSTRAP_PRESENCE)):
                latest = _latest_presence(batch.presence, retained=retained)
                if latest:
                    await conn.execute(
                        statement,
                        [u.vin for u in latest],
                        [u.online for u in latest],
                        [u.at for u in latest],
                    )
            if batch.sequences:
                vins = sorted(batch.sequences)  # one lock order for every worker: no deadlock
                stored = {r["vin"]: r["last_seq"] for r in await conn.fetch(_LOCK_SEQUENCES, vins)}
                stats = {v: _sequence_stats(batch.sequences[v], stored.get(v)) for v in vins}
                await conn.execute(
                    _UPSERT_SEQUENCES,
                    vins,
                    [stats[v].last_seq for v in vins],
                    [stats[v].gaps for v in vins],
                    [stats[v].duplicates for v in vins],
                )
