"""Customer profiles in PostgreSQL: create, read, page, update, and the login lookup."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from uuid import UUID

import asyncpg

from api.customers.errors import CustomerNotFoundError, EmailTakenError

#: Profile columns a caller may set; everything else is managed here.
PROFILE_FIELDS = (
    "email",
    "given_name",
    "family_name",
    "phone",
    "address_line",
    "postal_code",
    "city",
    "country",
    "language",
    "preferred_channels",
    "quiet_hours_start",
    "quiet_hours_end",
    "timezone",
)
_COLUMNS = "id, " + ", ".join(PROFILE_FIELDS) + ", created_at, updated_at"


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: UUID
    email: str
    given_name: str
    family_name: str
    phone: str | None
    address_line: str | None
    postal_code: str | None
    city: str | None
    country: str | None
    language: str
    preferred_channels: list[str]
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    timezone: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LoginRecord:
    customer_id: UUID | None
    password_hash: str | None


def _record(row: asyncpg.Record) -> CustomerRecord:
    return CustomerRecord(**dict(row))


class CustomerStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, profile: Mapping[str, Any], *, password_hash: str | None, now: datetime
    ) -> CustomerRecord:
        fields = [f for f in PROFILE_FIELDS if f in profile]
        values = [profile[f] for f in fields]
        placeholders = ", ".join(f"${i}" for i in range(1, len(fields) + 3))
        try:
            row = await self._pool.fetchrow(
                f"INSERT INTO customers ({', '.join(fields)}, password_hash, created_at)"
                f" VALUES ({placeholders}) RETURNING {_COLUMNS}",
                *values,
                password_hash,
                now,
            )
        except asyncpg.UniqueViolationError as exc:
            raise EmailTakenError() from exc
        assert row is not None
        return _record(row)

    async def get(self, customer_id: UUID) -> CustomerRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM customers WHERE id = $1", customer_id
        )
        return _record(row) if row else None

    async def require(self, customer_id: UUID) -> CustomerRecord:
        record = await self.get(customer_id)
        if record is None:
            raise CustomerNotFoundError(customer_id)
        return record

    async def exists(self, customer_id: UUID) -> bool:
        found = await self._pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)", customer_id
        )
        return bool(found)

    async def page(self, *, limit: int, offset: int) -> tuple[list[CustomerRecord], int]:
        async with self._pool.acquire() as conn:
            count = await conn.fetchval("SELECT count(*) FROM customers")
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM customers ORDER BY created_at, id LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        return [_record(r) for r in rows], int(count)

    async def update(
        self, customer_id: UUID, changes: Mapping[str, Any], *, now: datetime
    ) -> CustomerRecord:
        fields = [f for f in PROFILE_FIELDS if f in changes]
        assignments = ", ".join(f"{f} = ${i}" for i, f in enumerate(fields, start=3))
        try:
            row = await self._pool.fetchrow(
                f"UPDATE customers SET updated_at = $2{', ' if fields else ''}{assignments}"
                f" WHERE id = $1 RETURNING {_COLUMNS}",
                customer_id,
                now,
                *(changes[f] for f in fields),
            )
        except asyncpg.UniqueViolationError as exc:
            raise EmailTakenError() from exc
        if row is None:
            raise CustomerNotFoundError(customer_id)
        return _record(row)

    async def login(self, email: str) -> LoginRecord:
        row = await self._pool.fetchrow(
            "SELECT id, password_hash FROM customers WHERE lower(email) = lower($1)", email
        )
        if row is None:
            return LoginRecord(None, None)
        return LoginRecord(row["id"], row["password_hash"])
