"""Each vehicle's update in a campaign (``ota_campaign_vehicles``) as the status machine's
:class:`UpdateRecord`, and back. Every change goes through :func:`ota.status_machine.transition`
so the table never holds a step the machine does not allow."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final

import asyncpg

from ota.campaigns.errors import UpdateNotFoundError
from ota.status_machine import Transition, UpdateRecord, UpdateStatus, transition

S = UpdateStatus
TIME_COLUMNS: Final = MappingProxyType({status: f"{status.value}_at" for status in UpdateStatus})
_SELECT = (
    "SELECT campaign_id, vin, wave, status, attempt, result_code, result_detail, requires_consent,"
    " hold_reason, updated_at, " + ", ".join(TIME_COLUMNS.values()) + " FROM ota_campaign_vehicles"
)


@dataclass(frozen=True, slots=True)
class VehicleUpdate:
    campaign_id: uuid.UUID
    vin: str
    wave: int
    requires_consent: bool | None
    record: UpdateRecord
    updated_at: datetime
    hold_reason: str | None = None  # why an assigned update waits (window, preconditions)


def _update(row: asyncpg.Record) -> VehicleUpdate:
    reached = {s: row[c] for s, c in TIME_COLUMNS.items() if row[c] is not None}
    record = UpdateRecord(
        status=UpdateStatus(row["status"]),
        attempt=row["attempt"],
        reached=MappingProxyType(reached),
        code=row["result_code"],
        detail=row["result_detail"],
    )
    return VehicleUpdate(
        row["campaign_id"],
        row["vin"],
        row["wave"],
        row["requires_consent"],
        record,
        row["updated_at"],
        row["hold_reason"],
    )


async def load_update(
    conn: asyncpg.Connection, campaign_id: uuid.UUID, vin: str, *, lock: bool = False
) -> VehicleUpdate | None:
    row = await conn.fetchrow(
        _SELECT + " WHERE campaign_id = $1 AND vin = $2" + (" FOR UPDATE" if lock else ""),
        campaign_id,
        vin,
    )
    return _update(row) if row is not None else None


async def list_updates(
    conn: asyncpg.Connection | asyncpg.Pool,
    campaign_id: uuid.UUID,
    *,
    status: UpdateStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[VehicleUpdate], int]:
    where = " WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2)"
    rows = await conn.fetch(
        _SELECT + where + " ORDER BY wave, vin LIMIT $3 OFFSET $4",
        campaign_id,
        status.value if status else None,
        limit,
        offset,
    )
    count = await conn.fetchval(
        "SELECT count(*) FROM ota_campaign_vehicles" + where,
        campaign_id,
        status.value if status else None,
    )
    return [_update(r) for r in rows], count


async def save_record(
    conn: asyncpg.Connection,
    campaign_id: uuid.UUID,
    vin: str,
    record: UpdateRecord,
    now: datetime,
) -> None:
    times = [record.reached.get(status) for status in TIME_COLUMNS]
    assignments = ", ".join(
        f"{column} = ${i + 8}" for i, column in enumerate(TIME_COLUMNS.values())
    )
    await conn.execute(
        "UPDATE ota_campaign_vehicles SET status = $3, attempt = $4, result_code = $5,"
        f" result_detail = $6, updated_at = $7, {assignments}"
        " WHERE campaign_id = $1 AND vin = $2",
        campaign_id,
        vin,
        record.status.value,
        record.attempt,
        record.code,
        record.detail,
        now,
        *times,
    )


async def apply(
    conn: asyncpg.Connection,
    campaign_id: uuid.UUID,
    vin: str,
    target: UpdateStatus,
    now: datetime,
    *,
    code: str | None = None,
    detail: str | None = None,
) -> Transition:
    """Lock the vehicle's update, move it to ``target`` (or raise) and store it."""
    found = await load_update(conn, campaign_id, vin, lock=True)
    if found is None:
        raise UpdateNotFoundError(
            f"no update of campaign {campaign_id} for {vin}", vin=vin, campaign_id=str(campaign_id)
        )
    moved = transition(found.record, target, now, code=code, detail=detail)
    if moved.changed:
        await save_record(conn, campaign_id, vin, moved.record, now)
    return moved
