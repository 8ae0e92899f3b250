"""Read side of the telemetry store, for the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from protocol.catalogue import INTEGER_BOUNDS, Datatype, get_signal


@dataclass(frozen=True, slots=True)
class SignalState:
    signal: str
    value: bool | int | float | str | None
    ts: datetime


def restore_value(
    signal: str, value: float | None, text: str | None
) -> bool | int | float | str | None:
    """Undo the storage encoding: booleans and integers are stored as double precision."""
    if text is not None:
        return text
    if value is None:
        return None
    spec = get_signal(signal)
    if spec is not None:
        if spec.datatype == Datatype.BOOLEAN:
            return value != 0.0
        if spec.datatype in INTEGER_BOUNDS:  # the integer VSS types
            return int(value)
    return value


async def latest_state(conn: asyncpg.Connection, vin: str) -> list[SignalState]:
    rows = await conn.fetch(
        "SELECT signal, ts, value, value_text FROM vehicle_state WHERE vin = $1 ORDER BY signal",
        vin,
    )
    return [
        SignalState(r["signal"], restore_value(r["signal"], r["value"], r["value_text"]), r["ts"])
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    ts: datetime
    type: str
    code: str | None
    active: bool | None
    body: str  # the message as the car sent it (JSON), unknown fields included


async def vehicle_events(
    conn: asyncpg.Connection,
    vin: str,
    *,
    since: datetime | None,
    until: datetime | None,
    event_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[StoredEvent], int]:
    """A vehicle's events in ``[since, until)``, newest first, and how many there are."""
    where = (
        "vin = $1 AND ($2::timestamptz IS NULL OR ts >= $2)"
        " AND ($3::timestamptz IS NULL OR ts < $3) AND ($4::text IS NULL OR type = $4)"
    )
    rows = await conn.fetch(
        f"SELECT seq, ts, type, code, active, body::text AS body FROM vehicle_events"
        f" WHERE {where} ORDER BY ts DESC, seq DESC LIMIT $5 OFFSET $6",
        vin,
        since,
        until,
        event_type,
        limit,
        offset,
    )
    total: int = await conn.fetchval(
        f"SELECT count(*) FROM vehicle_events WHERE {where}", vin, since, until, event_type
    )
    return [StoredEvent(**dict(r)) for r in rows], total
