"""A closing work order resolves the alerts it names, in its own transaction, with one
``alert.resolved`` outbox event per alert it resolved.

The alerts table is the diagnostics package's; the payload is the alert's public JSON in the
shape diagnostics writes for its own ``alert.resolved`` events, so consumers (the notifier, the
booking suggester) cannot tell who resolved it except by ``resolution``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from diagnostics.outbox import append

_RESOLVE = """
UPDATE alerts SET status = 'resolved', resolved_at = $3, resolution = 'work_order',
    work_order_id = $4, updated_at = $3, revision = revision + 1
WHERE id = ANY($1::bigint[]) AND vin = $2 AND status <> 'resolved'
RETURNING *
"""
_TIMES = ("opened_at", "updated_at", "detected_at", "acknowledged_at", "resolved_at")
_FIELDS = (
    "id",
    "vin",
    "type",
    "component",
    "status",
    "severity",
    "opened_at",
    "updated_at",
    "detected_at",
    "acknowledged_at",
    "resolved_at",
    "resolution",
    "work_order_id",
    "predicted_failure_at",
    "confidence",
    "evidence",
    "recommended_action",
)


def alert_payload(row: asyncpg.Record) -> dict[str, Any]:
    """The alert's public JSON. Columns a given schema version lacks (``detected_at`` came
    later) are left out rather than invented."""
    values = dict(row)
    payload: dict[str, Any] = {}
    for name in _FIELDS:
        if name not in values:
            continue
        value = values[name]
        if name in (*_TIMES, "predicted_failure_at"):
            value = value.isoformat() if value is not None else None
        elif name == "confidence":
            value = round(float(value), 4)
        elif name == "evidence" and isinstance(value, str):
            value = json.loads(value)
        payload[name] = value
    return payload


async def resolve_by_work_order(
    conn: asyncpg.Connection,
    alert_ids: Sequence[int],
    *,
    vin: str,
    work_order_id: int,
    now: datetime,
) -> list[int]:
    """Resolve the still-active alerts among ``alert_ids`` of ``vin``; returns their ids."""
    if not alert_ids:
        return []
    rows = await conn.fetch(_RESOLVE, sorted(set(alert_ids)), vin, now, work_order_id)
    for row in rows:
        await append(
            conn,
            "alert.resolved",
            f"alert:{row['id']}",
            alert_payload(row),
            occurred_at=now,
            vin=row["vin"],
        )
    return sorted(r["id"] for r in rows)
