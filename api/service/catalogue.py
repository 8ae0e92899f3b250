"""Recall campaigns and warranty terms in PostgreSQL (admin CRUD, and the lookups the work
order checks make)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from api.service.errors import (
    AlreadyExistsError,
    InvalidRangeError,
    RecallNotFoundError,
    WarrantyTermsNotFoundError,
)
from api.service.recall_check import RecallCampaign
from api.service.warranty import WarrantyTerms

RECALL_FIELDS = (
    "title",
    "brand",
    "model",
    "model_year_from",
    "model_year_to",
    "serial_from",
    "serial_to",
    "remedy",
    "active",
)
_RECALL_COLUMNS = "code, " + ", ".join(RECALL_FIELDS) + ", created_at, updated_at"


def _recall(row: asyncpg.Record) -> RecallCampaign:
    return RecallCampaign(**dict(row))


async def recalls_for_brand(conn: asyncpg.Connection, brand: str) -> list[RecallCampaign]:
    """The active campaigns of ``brand`` (any case)."""
    rows = await conn.fetch(
        f"SELECT {_RECALL_COLUMNS} FROM recall_campaigns"
        " WHERE active AND lower(brand) = lower($1) ORDER BY code",
        brand.strip(),
    )
    return [_recall(r) for r in rows]


async def completed_recalls(conn: asyncpg.Connection, vin: str) -> set[str]:
    rows = await conn.fetch("SELECT recall_code FROM recall_completions WHERE vin = $1", vin)
    return {r["recall_code"] for r in rows}


async def warranty_terms_for(conn: asyncpg.Connection, brand: str) -> WarrantyTerms | None:
    row = await conn.fetchrow(
        "SELECT brand, years, km FROM warranty_terms WHERE lower(brand) = lower($1)",
        brand.strip(),
    )
    return WarrantyTerms(row["brand"], row["years"], row["km"]) if row else None


class RecallStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, fields: Mapping[str, Any], *, now: datetime) -> RecallCampaign:
        values = ", ".join(f"${i}" for i in range(2, len(RECALL_FIELDS) + 2))
        try:
            row = await self._pool.fetchrow(
                f"INSERT INTO recall_campaigns (code, {', '.join(RECALL_FIELDS)}, created_at,"
                f" updated_at) VALUES ($1, {values}, ${len(RECALL_FIELDS) + 2},"
                f" ${len(RECALL_FIELDS) + 2}) RETURNING {_RECALL_COLUMNS}",
                fields["code"],
                *(fields.get(f) for f in RECALL_FIELDS),
                now,
            )
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyExistsError("recall campaign", fields["code"]) from exc
        assert row is not None
        return _recall(row)

    async def get(self, code: str) -> RecallCampaign:
        row = await self._pool.fetchrow(
            f"SELECT {_RECALL_COLUMNS} FROM recall_campaigns WHERE code = $1", code
        )
        if row is None:
            raise RecallNotFoundError(code)
        return _recall(row)

    async def page(self, *, limit: int, offset: int) -> tuple[list[RecallCampaign], int]:
        async with self._pool.acquire() as conn:
            count = await conn.fetchval("SELECT count(*) FROM recall_campaigns")
            rows = await conn.fetch(
                f"SELECT {_RECALL_COLUMNS} FROM recall_campaigns ORDER BY code LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        return [_recall(r) for r in rows], int(count)

    async def update(
        self, code: str, changes: Mapping[str, Any], *, now: datetime
    ) -> RecallCampaign:
        names = [f for f in RECALL_FIELDS if f in changes and f != "brand"]
        assignments = "".join(f", {f} = ${i}" for i, f in enumerate(names, start=3))
        try:
            row = await self._pool.fetchrow(
                f"UPDATE recall_campaigns SET updated_at = $2{assignments} WHERE code = $1"
                f" RETURNING {_RECALL_COLUMNS}",
                code,
                now,
                *(changes[f] for f in names),
            )
        except asyncpg.CheckViolationError as exc:
            # A bound moved past the stored other bound (the body alone was consistent).
            raise InvalidRangeError("a range would end before it starts") from exc
        if row is None:
            raise RecallNotFoundError(code)
        return _recall(row)


class WarrantyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def put(
        self, brand: str, *, years: int, km: int | None, now: datetime
    ) -> tuple[WarrantyTerms, datetime]:
        """Set ``brand``'s terms (a brand differing only in case is the same brand)."""
        row = await self._pool.fetchrow(
            "INSERT INTO warranty_terms (brand, years, km, updated_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT ((lower(brand))) DO UPDATE SET years = EXCLUDED.years,"
            " km = EXCLUDED.km, updated_at = EXCLUDED.updated_at"
            " RETURNING brand, years, km, updated_at",
            brand,
            years,
            km,
            now,
        )
        assert row is not None
        return WarrantyTerms(row["brand"], row["years"], row["km"]), row["updated_at"]

    async def list(self) -> list[tuple[WarrantyTerms, datetime]]:
        rows = await self._pool.fetch(
            "SELECT brand, years, km, updated_at FROM warranty_terms ORDER BY lower(brand)"
        )
        return [(WarrantyTerms(r["brand"], r["years"], r["km"]), r["updated_at"]) for r in rows]

    async def delete(self, brand: str) -> None:
        status: str = await self._pool.execute(
            "DELETE FROM warranty_terms WHERE lower(brand) = lower($1)", brand
        )
        if status.endswith(" 0"):
            raise WarrantyTermsNotFoundError(brand)
