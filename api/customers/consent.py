"""Consent per purpose: an append-only record of every change plus the current decision.

A decision is recorded only when it changes the current state (or is the first for a purpose),
so an app that re-sends its whole settings screen does not bury the history in repeats.
Purposes never decided count as not granted: consent is opt-in (GDPR art. 4(11), 7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

import asyncpg

from api.customers.errors import CustomerNotFoundError


class Purpose(StrEnum):
    LOCATION = "location"
    DIAGNOSTICS_SHARING = "diagnostics_sharing"
    MARKETING = "marketing"
    OTA_AUTO_INSTALL = "ota_auto_install"


class ConsentSource(StrEnum):
    APP = "app"
    WEB = "web"
    DEALER = "dealer"
    IN_CAR = "in_car"


@dataclass(frozen=True, slots=True)
class ConsentState:
    purpose: Purpose
    granted: bool
    source: ConsentSource | None  # None: never decided
    changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    id: int
    purpose: Purpose
    granted: bool
    source: ConsentSource
    recorded_at: datetime


async def lock_customer(conn: asyncpg.Connection, customer_id: UUID) -> None:
    """Lock the customer's row until the transaction ends, or raise if there is none."""
    locked = await conn.fetchval("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", customer_id)
    if locked is None:
        raise CustomerNotFoundError(customer_id)


async def current_consents(conn: asyncpg.Connection, customer_id: UUID) -> list[ConsentState]:
    """Every purpose, in a fixed order; undecided ones as not granted."""
    rows = await conn.fetch(
        "SELECT purpose, granted, source, changed_at FROM customer_consents WHERE customer_id = $1",
        customer_id,
    )
    decided = {r["purpose"]: r for r in rows}
    states = []
    for purpose in Purpose:
        row = decided.get(purpose.value)
        states.append(
            ConsentState(purpose, False, None, None)
            if row is None
            else ConsentState(
                purpose, row["granted"], ConsentSource(row["source"]), row["changed_at"]
            )
        )
    return states


async def consent_history(
    conn: asyncpg.Connection, customer_id: UUID, *, limit: int, offset: int
) -> tuple[list[ConsentRecord], int]:
    count = await conn.fetchval(
        "SELECT count(*) FROM consent_records WHERE customer_id = $1", customer_id
    )
    rows = await conn.fetch(
        "SELECT id, purpose, granted, source, recorded_at FROM consent_records"
        " WHERE customer_id = $1 ORDER BY recorded_at DESC, id DESC LIMIT $2 OFFSET $3",
        customer_id,
        limit,
        offset,
    )
    return [
        ConsentRecord(
            id=r["id"],
            purpose=Purpose(r["purpose"]),
            granted=r["granted"],
            source=ConsentSource(r["source"]),
            recorded_at=r["recorded_at"],
        )
        for r in rows
    ], int(count)


async def record_consents(
    pool: asyncpg.Pool,
    customer_id: UUID,
    decisions: Mapping[Purpose, bool],
    *,
    source: ConsentSource,
    now: datetime,
) -> list[ConsentState]:
    """Apply ``decisions`` (purposes not named stay as they are) and return the new state."""
    async with pool.acquire() as conn, conn.transaction():
        # Serialise concurrent changes of one customer: each sees the other's result.
        await lock_customer(conn, customer_id)
        current = {s.purpose: s for s in await current_consents(conn, customer_id)}
        changed = [
            (purpose, granted)
            for purpose, granted in decisions.items()
            if current[purpose].source is None or current[purpose].granted != granted
        ]
        if changed:
            await conn.executemany(
                "INSERT INTO consent_records (customer_id, purpose, granted, source, recorded_at)"
                " VALUES ($1, $2, $3, $4, $5)",
                [(customer_id, p.value, g, source.value, now) for p, g in changed],
            )
            await conn.executemany(
                "INSERT INTO customer_consents (customer_id, purpose, granted, source, changed_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id, purpose) DO UPDATE"
                " SET granted = excluded.granted, source = excluded.source,"
                " changed_at = excluded.changed_at",
                [(customer_id, p.value, g, source.value, now) for p, g in changed],
            )
        return await current_consents(conn, customer_id)
