"""Service centres, their opening hours, and mobile service vans in PostgreSQL (admin CRUD, and
the lookups slot search and bookings make)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from api.service.errors import AlreadyExistsError, CentreNotFoundError, VanNotFoundError
from api.service.records import CentreRecord, VanRecord
from api.service.slots import OpeningInterval

CENTRE_FIELDS = (
    "name",
    "brand",
    "address",
    "lat",
    "lon",
    "timezone",
    "bays",
    "skills",
    "slot_minutes",
    "active",
)
_CENTRE_COLUMNS = "id, " + ", ".join(CENTRE_FIELDS) + ", created_at, updated_at"
VAN_FIELDS = ("name", "home_centre_id", "range_km", "skills", "slot_minutes", "active")
_VAN_COLUMNS = "id, " + ", ".join(VAN_FIELDS) + ", created_at, updated_at"


async def _hours(conn: asyncpg.Connection, ids: Sequence[str]) -> dict[str, list[OpeningInterval]]:
    rows = await conn.fetch(
        "SELECT centre_id, weekday, opens, closes FROM service_opening_hours"
        " WHERE centre_id = ANY($1::text[]) ORDER BY centre_id, weekday, opens",
        list(ids),
    )
    by_centre: dict[str, list[OpeningInterval]] = {}
    for r in rows:
        by_centre.setdefault(r["centre_id"], []).append(
            OpeningInterval(r["weekday"], r["opens"], r["closes"])
        )
    return by_centre


async def _centres(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[CentreRecord]:
    hours = await _hours(conn, [r["id"] for r in rows])
    return [
        CentreRecord(
            **{**dict(r), "skills": tuple(r["skills"])}, hours=tuple(hours.get(r["id"], ()))
        )
        for r in rows
    ]


def _van(row: asyncpg.Record) -> VanRecord:
    return VanRecord(**{**dict(row), "skills": tuple(row["skills"])})


async def _write_hours(
    conn: asyncpg.Connection, centre_id: str, hours: Sequence[OpeningInterval]
) -> None:
    await conn.execute("DELETE FROM service_opening_hours WHERE centre_id = $1", centre_id)
    await conn.executemany(
        "INSERT INTO service_opening_hours (centre_id, weekday, opens, closes)"
        " VALUES ($1, $2, $3, $4)",
        [(centre_id, h.weekday, h.opens, h.closes) for h in hours],
    )


async def get_centre(conn: asyncpg.Connection, centre_id: str) -> CentreRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_CENTRE_COLUMNS} FROM service_centres WHERE id = $1", centre_id
    )
    return (await _centres(conn, [row]))[0] if row else None


async def require_centre(conn: asyncpg.Connection, centre_id: str) -> CentreRecord:
    centre = await get_centre(conn, centre_id)
    if centre is None:
        raise CentreNotFoundError(centre_id)
    return centre


async def active_centres(conn: asyncpg.Connection, skills: Sequence[str]) -> list[CentreRecord]:
    """Every active centre offering all of ``skills``."""
    rows = await conn.fetch(
        f"SELECT {_CENTRE_COLUMNS} FROM service_centres"
        " WHERE active AND skills @> $1::text[] ORDER BY id",
        list(skills),
    )
    return await _centres(conn, rows)


async def get_van(conn: asyncpg.Connection, van_id: str) -> VanRecord | None:
    row = await conn.fetchrow(f"SELECT {_VAN_COLUMNS} FROM service_vans WHERE id = $1", van_id)
    return _van(row) if row else None


async def active_vans(conn: asyncpg.Connection, skills: Sequence[str]) -> list[VanRecord]:
    """Every active van offering all of ``skills`` whose home centre is active."""
    rows = await conn.fetch(
        f"SELECT {', '.join('v.' + c for c in _VAN_COLUMNS.split(', '))}"
        " FROM service_vans v JOIN service_centres c ON c.id = v.home_centre_id"
        " WHERE v.active AND c.active AND v.skills @> $1::text[] ORDER BY v.id",
        list(skills),
    )
    return [_van(r) for r in rows]


class CentreStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, fields: Mapping[str, Any], hours: Sequence[OpeningInterval], *, now: datetime
    ) -> CentreRecord:
        names = [f for f in CENTRE_FIELDS if f in fields]
        values = ", ".join(f"${i}" for i in range(2, len(names) + 2))
        async with self._pool.acquire() as conn, conn.transaction():
            try:
                await conn.execute(
                    f"INSERT INTO service_centres (id, {', '.join(names)}, created_at, updated_at)"
                    f" VALUES ($1, {values}, ${len(names) + 2}, ${len(names) + 2})",
                    fields["id"],
                    *(fields[f] for f in names),
                    now,
                )
            except asyncpg.UniqueViolationError as exc:
                raise AlreadyExistsError("service centre", fields["id"]) from exc
            await _write_hours(conn, fields["id"], hours)
            return await require_centre(conn, fields["id"])

    async def get(self, centre_id: str) -> CentreRecord:
        async with self._pool.acquire() as conn:
            return await require_centre(conn, centre_id)

    async def page(
        self, *, limit: int, offset: int, skill: str | None = None, active_only: bool = False
    ) -> tuple[list[CentreRecord], int]:
        where = "($1::text IS NULL OR $1 = ANY(skills)) AND (NOT $2 OR active)"
        async with self._pool.acquire() as conn:
            count = await conn.fetchval(
                f"SELECT count(*) FROM service_centres WHERE {where}", skill, active_only
            )
            rows = await conn.fetch(
                f"SELECT {_CENTRE_COLUMNS} FROM service_centres WHERE {where}"
                " ORDER BY id LIMIT $3 OFFSET $4",
                skill,
                active_only,
                limit,
                offset,
            )
            return await _centres(conn, rows), int(count)

    async def update(
        self,
        centre_id: str,
        changes: Mapping[str, Any],
        hours: Sequence[OpeningInterval] | None,
        *,
        now: datetime,
    ) -> CentreRecord:
        names = [f for f in CENTRE_FIELDS if f in changes]
        assignments = "".join(f", {f} = ${i}" for i, f in enumerate(names, start=3))
        async with self._pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                f"UPDATE service_centres SET updated_at = $2{assignments} WHERE id = $1"
                " RETURNING id",
                centre_id,
                now,
                *(changes[f] for f in names),
            )
            if found is None:
                raise CentreNotFoundError(centre_id)
            if hours is not None:
                await _write_hours(conn, centre_id, hours)
            return await require_centre(conn, centre_id)

    async def create_van(self, fields: Mapping[str, Any], *, now: datetime) -> VanRecord:
        names = [f for f in VAN_FIELDS if f in fields]
        values = ", ".join(f"${i}" for i in range(2, len(names) + 2))
        async with self._pool.acquire() as conn:
            try:
                row = await conn.fetchrow(
                    f"INSERT INTO service_vans (id, {', '.join(names)}, created_at, updated_at)"
                    f" VALUES ($1, {values}, ${len(names) + 2}, ${len(names) + 2})"
                    f" RETURNING {_VAN_COLUMNS}",
                    fields["id"],
                    *(fields[f] for f in names),
                    now,
                )
            except asyncpg.UniqueViolationError as exc:
                raise AlreadyExistsError("service van", fields["id"]) from exc
            except asyncpg.ForeignKeyViolationError as exc:
                raise CentreNotFoundError(fields["home_centre_id"]) from exc
        assert row is not None
        return _van(row)

    async def get_van(self, van_id: str) -> VanRecord:
        async with self._pool.acquire() as conn:
            van = await get_van(conn, van_id)
        if van is None:
            raise VanNotFoundError(van_id)
        return van

    async def page_vans(self, *, limit: int, offset: int) -> tuple[list[VanRecord], int]:
        async with self._pool.acquire() as conn:
            count = await conn.fetchval("SELECT count(*) FROM service_vans")
            rows = await conn.fetch(
                f"SELECT {_VAN_COLUMNS} FROM service_vans ORDER BY id LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        return [_van(r) for r in rows], int(count)

    async def update_van(
        self, van_id: str, changes: Mapping[str, Any], *, now: datetime
    ) -> VanRecord:
        names = [f for f in VAN_FIELDS if f in changes]
        assignments = "".join(f", {f} = ${i}" for i, f in enumerate(names, start=3))
        try:
            row = await self._pool.fetchrow(
                f"UPDATE service_vans SET updated_at = $2{assignments} WHERE id = $1"
                f" RETURNING {_VAN_COLUMNS}",
                van_id,
                now,
                *(changes[f] for f in names),
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise CentreNotFoundError(str(changes.get("home_centre_id"))) from exc
        if row is None:
            raise VanNotFoundError(van_id)
        return _van(row)
