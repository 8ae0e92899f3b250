"""Vehicle ownership periods: link a vehicle to a customer, transfer it, unlink it.

One open period per vehicle (a partial unique index). A transfer closes the previous period and
opens the new owner's at the same instant; the new owner's view of the car's data starts there
(``api.security.access``). The vehicle row is locked first so concurrent transfers of one car
serialise instead of failing on the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from api.customers.errors import CustomerNotFoundError, NoOwnerError
from api.vehicle_registry import VehicleNotFoundError

OwnershipSource = Literal["admin", "dealer"]
_COLUMNS = "id, vin, customer_id, source, started_at, ended_at"


@dataclass(frozen=True, slots=True)
class OwnershipPeriod:
    id: int
    vin: str
    customer_id: UUID
    source: OwnershipSource
    started_at: datetime
    ended_at: datetime | None


def _period(row: asyncpg.Record) -> OwnershipPeriod:
    return OwnershipPeriod(**dict(row))


class OwnershipStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def set_owner(
        self, vin: str, customer_id: UUID, *, source: OwnershipSource, now: datetime
    ) -> OwnershipPeriod:
        """Link ``vin`` to ``customer_id``, transferring it from its current owner if any.
        Idempotent: linking a car to its current owner returns the open period unchanged."""
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock_vehicle(conn, vin)
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)", customer_id
            ):
                raise CustomerNotFoundError(customer_id)
            current = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM vehicle_ownership WHERE vin = $1 AND ended_at IS NULL",
                vin,
            )
            if current is not None and current["customer_id"] == customer_id:
                return _period(current)
            started_at = now
            if current is not None:
                # Never end before it started (clock skew between API instances).
                started_at = max(now, current["started_at"])
                await conn.execute(
                    "UPDATE vehicle_ownership SET ended_at = $2 WHERE id = $1",
                    current["id"],
                    started_at,
                )
            row = await conn.fetchrow(
                "INSERT INTO vehicle_ownership (vin, customer_id, source, started_at)"
                f" VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
                vin,
                customer_id,
                source,
                started_at,
            )
        assert row is not None
        return _period(row)

    async def unlink(self, vin: str, *, now: datetime) -> OwnershipPeriod:
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock_vehicle(conn, vin)
            row = await conn.fetchrow(
                "UPDATE vehicle_ownership SET ended_at = greatest($2, started_at)"
                f" WHERE vin = $1 AND ended_at IS NULL RETURNING {_COLUMNS}",
                vin,
                now,
            )
        if row is None:
            raise NoOwnerError(vin)
        return _period(row)

    async def history(self, vin: str) -> list[OwnershipPeriod]:
        """Every period of ``vin``, oldest first (admin view)."""
        async with self._pool.acquire() as conn:
            await _require_vehicle(conn, vin)
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM vehicle_ownership WHERE vin = $1 ORDER BY started_at, id",
                vin,
            )
        return [_period(r) for r in rows]


async def customer_periods(conn: asyncpg.Connection, customer_id: UUID) -> list[OwnershipPeriod]:
    """Every period of ``customer_id``, open and closed, oldest first (GDPR export)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM vehicle_ownership WHERE customer_id = $1 ORDER BY started_at, id",
        customer_id,
    )
    return [_period(r) for r in rows]


async def _lock_vehicle(conn: asyncpg.Connection, vin: str) -> None:
    if await conn.fetchval("SELECT 1 FROM vehicles WHERE vin = $1 FOR NO KEY UPDATE", vin) is None:
        raise VehicleNotFoundError(vin)


async def _require_vehicle(conn: asyncpg.Connection, vin: str) -> None:
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM vehicles WHERE vin = $1)", vin):
        raise VehicleNotFoundError(vin)
