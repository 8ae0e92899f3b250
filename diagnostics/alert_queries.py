"""Reading alerts for the API: filtered, paged, limited to what the caller may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from diagnostics.alert_store import _COLUMNS, AlertRecord


@dataclass(frozen=True, slots=True)
class AlertFilter:
    status: str | None = None
    type: str | None = None
    severity: str | None = None
    active_only: bool = False  # open or acknowledged


# (vin, since, until): alerts of ``vin`` detected in [since, until); None bounds are open.
Window = tuple[str, datetime | None, datetime | None]


async def list_alerts(
    conn: asyncpg.Connection,
    *,
    windows: Sequence[Window] | None,
    where: AlertFilter,
    limit: int,
    offset: int,
) -> tuple[list[AlertRecord], int]:
    """Newest first. ``windows`` None: every vehicle (admins)."""
    conditions = [
        "($1::text IS NULL OR a.status = $1)",
        "($2::text IS NULL OR a.type = $2)",
        "($3::text IS NULL OR a.severity = $3)",
    ]
    if where.active_only:
        conditions.append("a.status <> 'resolved'")
    join = ""
    args: list[object] = [where.status, where.type, where.severity, limit, offset]
    if windows is not None:
        join = (
            "JOIN unnest($6::text[], $7::timestamptz[], $8::timestamptz[]) AS w(vin, since, until)"
            " ON w.vin = a.vin AND (w.since IS NULL OR a.detected_at >= w.since)"
            " AND (w.until IS NULL OR a.detected_at < w.until)"
        )
        args += [[w[0] for w in windows], [w[1] for w in windows], [w[2] for w in windows]]
    sql = f"""
        SELECT {", ".join("a." + c.strip() for c in _COLUMNS.split(","))},
               count(*) OVER () AS total
        FROM alerts a {join}
        WHERE {" AND ".join(conditions)}
        ORDER BY a.opened_at DESC, a.id DESC
        LIMIT $4 OFFSET $5
    """
    rows = await conn.fetch(sql, *args)
    total = rows[0]["total"] if rows else await _count(conn, join, conditions, args)
    return [AlertRecord.from_row(_without_total(r)) for r in rows], total


async def _count(
    conn: asyncpg.Connection, join: str, conditions: list[str], args: list[object]
) -> int:
    # Past the last page the window count is gone with the rows: count separately.
    sql = f"""
        SELECT count(*) FROM alerts a {join}
        WHERE {" AND ".join(conditions)} AND $4::int IS NOT NULL AND $5::int IS NOT NULL
    """
    total: int = await conn.fetchval(sql, *args)
    return total


def _without_total(row: asyncpg.Record) -> dict[str, object]:
    values = dict(row)
    values.pop("total")
    return values
