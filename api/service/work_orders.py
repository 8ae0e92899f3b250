"""Work orders in PostgreSQL: opened by the centre once the car is checked in (with the recall
and warranty checks made then), parts and labour lines, and closing, which in one transaction
resolves the alerts it names, records recall remedies done, completes the booking, and appends
``alert.resolved``, ``booking.completed`` and ``work_order.closed`` outbox events."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from api.service.bookings import require_booking, transition
from api.service.catalogue import completed_recalls, recalls_for_brand, warranty_terms_for
from api.service.errors import (
    AlertMismatchError,
    AlreadyExistsError,
    CoverageError,
    WorkOrderLineNotFoundError,
    WorkOrderNotFoundError,
    WorkOrderStateError,
)
from api.service.lifecycle import Actor, BookingAction, BookingStatus
from api.service.pricing import Coverage, LineKind, PricedLine, totals
from api.service.recall_check import open_recalls
from api.service.records import WorkOrderLine, WorkOrderRecord
from api.service.vehicle_facts import odometer_km, vehicle_facts
from api.service.views import work_order_payload
from api.service.warranty import OdometerBasis, decide_warranty
from diagnostics.alert_store import resolve_alerts
from diagnostics.lifecycle import Resolution
from diagnostics.outbox import append

_COLUMNS = (
    "id, booking_id, vin, centre_id, status, complaint, odometer_km, recalls::text AS recalls,"
    " warranty::text AS warranty, alert_ids, resolved_alert_ids, currency, parts_total_cents,"
    " labour_total_cents, covered_total_cents, customer_total_cents, opened_at, closed_at,"
    " updated_at, revision"
)
_LINE_COLUMNS = (
    "id, kind, code, description, quantity, unit_price_cents, coverage, recall_code, created_at"
)


@dataclass(frozen=True, slots=True)
class WorkOrderRequest:
    complaint: str
    alert_ids: Sequence[int] | None = None  # None: the booking's alert, if any
    odometer_km: float | None = None
    first_registered_on: date | None = None


@dataclass(frozen=True, slots=True)
class LineRequest:
    kind: LineKind
    code: str
    description: str
    quantity: Decimal
    unit_price_cents: int
    coverage: Coverage = "customer"
    recall_code: str | None = None


async def get_work_order(
    conn: asyncpg.Connection, work_order_id: int, *, lock: bool = False
) -> WorkOrderRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM work_orders WHERE id = $1{' FOR UPDATE' if lock else ''}",
        work_order_id,
    )
    if row is None:
        return None
    lines = await conn.fetch(
        f"SELECT {_LINE_COLUMNS} FROM work_order_lines WHERE work_order_id = $1 ORDER BY id",
        work_order_id,
    )
    values = dict(row)
    return WorkOrderRecord(
        **{
            **values,
            "recalls": json.loads(values["recalls"]),
            "warranty": json.loads(values["warranty"]),
            "alert_ids": tuple(values["alert_ids"]),
            "resolved_alert_ids": tuple(values["resolved_alert_ids"]),
        },
        lines=tuple(WorkOrderLine(**dict(r)) for r in lines),
    )


async def require_work_order(
    conn: asyncpg.Connection, work_order_id: int, *, lock: bool = False
) -> WorkOrderRecord:
    record = await get_work_order(conn, work_order_id, lock=lock)
    if record is None:
        raise WorkOrderNotFoundError(work_order_id)
    return record


async def page_work_orders(
    conn: asyncpg.Connection,
    *,
    limit: int,
    offset: int,
    centres: Collection[str] | None = None,
    status: str | None = None,
    vin: str | None = None,
) -> tuple[list[WorkOrderRecord], int]:
    """Work orders, newest first (``centres``: at any of them)."""
    where = (
        "($1::text[] IS NULL OR centre_id = ANY($1)) AND ($2::text IS NULL OR status = $2)"
        " AND ($3::text IS NULL OR vin = $3)"
    )
    args = (list(centres) if centres is not None else None, status, vin)
    count = await conn.fetchval(f"SELECT count(*) FROM work_orders WHERE {where}", *args)
    ids = await conn.fetch(
        f"SELECT id FROM work_orders WHERE {where} ORDER BY opened_at DESC, id DESC"
        " LIMIT $4 OFFSET $5",
        *args,
        limit,
        offset,
    )
    return [await require_work_order(conn, r["id"]) for r in ids], int(count)


async def _check_alerts(conn: asyncpg.Connection, alert_ids: Sequence[int], vin: str) -> None:
    found = await conn.fetch(
        "SELECT id FROM alerts WHERE id = ANY($1::bigint[]) AND vin = $2", list(alert_ids), vin
    )
    missing = sorted(set(alert_ids) - {r["id"] for r in found})
    if missing:
        raise AlertMismatchError(missing, vin)


async def _resolve_alerts(
    conn: asyncpg.Connection,
    alert_ids: Sequence[int],
    vin: str,
    work_order_id: int,
    now: datetime,
) -> list[int]:
    """Resolve the still-active alerts among ``alert_ids`` of ``vin`` through diagnostics' own
    store (one ``alert.resolved`` event each); returns their ids."""
    if not alert_ids:
        return []
    # The alert writers' per-vehicle lock (diagnostics.alert_store): an engine deciding about
    # one of these alerts at the same time waits, then sees it resolved, instead of updating
    # it from a stale read (which would reopen it).
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('alerts:' || $1::text))", vin)
    ids = await conn.fetch(
        "SELECT id FROM alerts WHERE id = ANY($1::bigint[]) AND vin = $2 AND status <> 'resolved'"
        " ORDER BY id FOR UPDATE",
        list(alert_ids),
        vin,
    )
    records = await resolve_alerts(
        conn,
        [r["id"] for r in ids],
        now=now,
        resolution=Resolution.WORK_ORDER,
        work_order_id=work_order_id,
    )
    return sorted(r.id for r in records)


async def open_work_order(
    conn: asyncpg.Connection, booking_id: int, request: WorkOrderRequest, *, now: datetime
) -> WorkOrderRecord:
    """Open the work order of a checked-in booking, with the recall and warranty checks."""
    booking = await require_booking(conn, booking_id, lock=True)
    if booking.status is not BookingStatus.CHECKED_IN:
        raise WorkOrderStateError(
            f"booking {booking_id} is {booking.status.value}: a work order needs the car checked in"
        )
    if booking.work_order_id is not None:
        raise AlreadyExistsError("work order for booking", str(booking_id))
    alert_ids = list(request.alert_ids) if request.alert_ids is not None else []
    if request.alert_ids is None and booking.alert_id is not None:
        alert_ids = [booking.alert_id]
    await _check_alerts(conn, alert_ids, booking.vin)
    facts = await vehicle_facts(conn, booking.vin)
    assert facts is not None  # bookings reference vehicles
    recalls = open_recalls(
        await recalls_for_brand(conn, facts.brand),
        facts.identity,
        await completed_recalls(conn, booking.vin),
    )
    odometer, basis = request.odometer_km, "workshop"
    if odometer is None:
        odometer, basis = await odometer_km(conn, booking.vin), "telemetry"
    odometer_basis: OdometerBasis = "workshop" if basis == "workshop" else "telemetry"
    warranty = decide_warranty(
        await warranty_terms_for(conn, facts.brand),
        model_year=facts.model_year,
        first_registered_on=request.first_registered_on,
        odometer_km=odometer,
        odometer_basis=odometer_basis,
        today=now.astimezone(ZoneInfo(booking.centre_timezone)).date(),
    )
    work_order_id: int = await conn.fetchval(
        """
        INSERT INTO work_orders (booking_id, vin, centre_id, complaint, odometer_km, recalls,
            warranty, alert_ids, opened_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $9) RETURNING id
        """,
        booking_id,
        booking.vin,
        booking.centre_id,
        request.complaint,
        odometer,
        json.dumps([{"code": r.code, "title": r.title, "remedy": r.remedy} for r in recalls]),
        json.dumps(warranty.to_json()),
        sorted(set(alert_ids)),
        now,
    )
    record = await require_work_order(conn, work_order_id)
    await _publish(conn, record, "work_order.opened", booking.customer_id, now)
    return record


async def _publish(
    conn: asyncpg.Connection,
    record: WorkOrderRecord,
    topic: str,
    customer_id: UUID | None,
    now: datetime,
) -> None:
    await append(
        conn,
        topic,
        f"work_order:{record.id}",
        work_order_payload(record),
        occurred_at=now,
        vin=record.vin,
        customer_id=customer_id,
    )


async def _require_open(conn: asyncpg.Connection, work_order_id: int) -> WorkOrderRecord:
    record = await require_work_order(conn, work_order_id, lock=True)
    if record.status != "open":
        raise WorkOrderStateError(f"work order {work_order_id} is closed")
    return record


async def _recompute_totals(conn: asyncpg.Connection, work_order_id: int, now: datetime) -> None:
    rows = await conn.fetch(
        "SELECT kind, quantity, unit_price_cents, coverage FROM work_order_lines"
        " WHERE work_order_id = $1",
        work_order_id,
    )
    sums = totals(PricedLine(**dict(r)) for r in rows)
    await conn.execute(
        "UPDATE work_orders SET parts_total_cents = $2, labour_total_cents = $3,"
        " covered_total_cents = $4, customer_total_cents = $5, updated_at = $6,"
        " revision = revision + 1 WHERE id = $1",
        work_order_id,
        sums.parts_cents,
        sums.labour_cents,
        sums.covered_cents,
        sums.customer_cents,
        now,
    )


async def add_line(
    conn: asyncpg.Connection, work_order_id: int, line: LineRequest, *, now: datetime
) -> WorkOrderRecord:
    """Add a part or labour line. Warranty coverage needs the warranty check to have found the
    car covered; recall coverage a recall found open on the car."""
    record = await _require_open(conn, work_order_id)
    if line.coverage == "warranty" and not record.warranty.get("covered"):
        raise CoverageError(
            f"work order {work_order_id}: the car is not under warranty "
            f"({record.warranty.get('status')})"
        )
    if line.coverage == "recall" and line.recall_code not in {r["code"] for r in record.recalls}:
        raise CoverageError(
            f"work order {work_order_id}: recall {line.recall_code} was not found open on "
            f"{record.vin}"
        )
    await conn.execute(
        """
        INSERT INTO work_order_lines (work_order_id, kind, code, description, quantity,
            unit_price_cents, coverage, recall_code, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """,
        work_order_id,
        line.kind,
        line.code,
        line.description,
        line.quantity,
        line.unit_price_cents,
        line.coverage,
        line.recall_code,
        now,
    )
    await _recompute_totals(conn, work_order_id, now)
    return await require_work_order(conn, work_order_id)


async def remove_line(
    conn: asyncpg.Connection, work_order_id: int, line_id: int, *, now: datetime
) -> WorkOrderRecord:
    await _require_open(conn, work_order_id)
    deleted = await conn.fetchval(
        "DELETE FROM work_order_lines WHERE id = $1 AND work_order_id = $2 RETURNING id",
        line_id,
        work_order_id,
    )
    if deleted is None:
        raise WorkOrderLineNotFoundError(work_order_id, line_id)
    await _recompute_totals(conn, work_order_id, now)
    return await require_work_order(conn, work_order_id)


async def close_work_order(
    conn: asyncpg.Connection,
    work_order_id: int,
    *,
    more_alert_ids: Sequence[int] = (),
    now: datetime,
) -> WorkOrderRecord:
    """Close it: resolve its alerts, record the recall remedies done, complete the booking."""
    record = await _require_open(conn, work_order_id)
    booking = await require_booking(conn, record.booking_id, lock=True)
    if booking.status is not BookingStatus.CHECKED_IN:
        raise WorkOrderStateError(
            f"booking {booking.id} is {booking.status.value}: only a checked-in visit completes"
        )
    alert_ids = sorted(set(record.alert_ids) | set(more_alert_ids))
    await _check_alerts(conn, alert_ids, record.vin)
    resolved = await _resolve_alerts(conn, alert_ids, record.vin, work_order_id, now)
    await conn.execute(
        "INSERT INTO recall_completions (vin, recall_code, work_order_id, completed_at)"
        " SELECT DISTINCT $1::text, recall_code, $2::bigint, $3::timestamptz"
        " FROM work_order_lines WHERE work_order_id = $2 AND recall_code IS NOT NULL"
        " ON CONFLICT DO NOTHING",
        record.vin,
        work_order_id,
        now,
    )
    await conn.execute(
        "UPDATE work_orders SET status = 'closed', closed_at = $2, alert_ids = $3,"
        " resolved_alert_ids = $4, updated_at = $2, revision = revision + 1 WHERE id = $1",
        work_order_id,
        now,
        alert_ids,
        resolved,
    )
    await transition(conn, booking.id, BookingAction.COMPLETE, Actor.SYSTEM, now=now)
    closed = await require_work_order(conn, work_order_id)
    await _publish(conn, closed, "work_order.closed", booking.customer_id, now)
    return closed
