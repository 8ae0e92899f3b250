"""Notifications and their deliveries in PostgreSQL: write (for the notifier), the inbox (list,
read, recent), and the SSE stream's reads after an id."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from api.notifications.errors import NotificationNotFoundError
from api.notifications.model import Category, Channel, DeliveryState
from api.notifications.routing import DeliveryPlan
from api.notifications.templates import Draft, Told

#: NOTIFY channel, payload ``<customer uuid>:<notification id>``: the SSE hub and the delivery
#: loop wake on it. Sent in the notifier's transaction, so only committed rows are announced.
CHANNEL = "notifications"


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    channel: Channel
    state: DeliveryState
    reason: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    suppressed_at: datetime | None


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    id: int
    customer_id: UUID
    vin: str | None
    topic: str
    subject: str
    category: Category
    language: str
    title: str
    body: str
    data: Mapping[str, Any]
    created_at: datetime
    read_at: datetime | None
    deliveries: tuple[DeliveryRecord, ...]

    def delivery(self, channel: Channel) -> DeliveryRecord | None:
        return next((d for d in self.deliveries if d.channel is channel), None)


# Each notification with its deliveries as one JSON array (one query per page).
_SELECT = """
SELECT n.id, n.customer_id, n.vin, n.topic, n.subject, n.category, n.language, n.title,
       n.body, n.data::text AS data, n.created_at, n.read_at,
       (SELECT coalesce(json_agg(json_build_object(
                 'channel', d.channel, 'state', d.state, 'reason', d.reason,
                 'attempts', d.attempts, 'next_attempt_at', d.next_attempt_at,
                 'last_error', d.last_error, 'sent_at', d.sent_at,
                 'delivered_at', d.delivered_at, 'read_at', d.read_at,
                 'failed_at', d.failed_at, 'suppressed_at', d.suppressed_at)
                 ORDER BY d.id), '[]')::text
        FROM notification_deliveries d WHERE d.notification_id = n.id) AS deliveries
FROM notifications n
"""


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _delivery(raw: Mapping[str, Any]) -> DeliveryRecord:
    return DeliveryRecord(
        channel=Channel(raw["channel"]),
        state=DeliveryState(raw["state"]),
        reason=raw["reason"],
        attempts=raw["attempts"],
        next_attempt_at=_time(raw["next_attempt_at"]),
        last_error=raw["last_error"],
        sent_at=_time(raw["sent_at"]),
        delivered_at=_time(raw["delivered_at"]),
        read_at=_time(raw["read_at"]),
        failed_at=_time(raw["failed_at"]),
        suppressed_at=_time(raw["suppressed_at"]),
    )


def _record(row: asyncpg.Record) -> NotificationRecord:
    return NotificationRecord(
        id=row["id"],
        customer_id=row["customer_id"],
        vin=row["vin"],
        topic=row["topic"],
        subject=row["subject"],
        category=Category(row["category"]),
        language=row["language"],
        title=row["title"],
        body=row["body"],
        data=json.loads(row["data"]),
        created_at=row["created_at"],
        read_at=row["read_at"],
        deliveries=tuple(_delivery(d) for d in json.loads(row["deliveries"])),
    )


# -- writing (the notifier) ----------------------------------------------------------------------


async def told_about(conn: asyncpg.Connection, customer_id: UUID, subject: str) -> tuple[Told, ...]:
    rows = await conn.fetch(
        "SELECT topic, data::text AS data FROM notifications"
        " WHERE customer_id = $1 AND subject = $2 ORDER BY id",
        customer_id,
        subject,
    )
    return tuple(Told(r["topic"], json.loads(r["data"])) for r in rows)


@dataclass(frozen=True, slots=True)
class NewNotification:
    customer_id: UUID
    vin: str | None
    topic: str
    subject: str
    outbox_id: int | None
    language: str
    draft: Draft
    created_at: datetime


async def insert_notification(
    conn: asyncpg.Connection, new: NewNotification, plans: Sequence[DeliveryPlan]
) -> int | None:
    """Write the notification and its deliveries, and announce it on :data:`CHANNEL`; None
    when the customer already has one with the same dedupe key (nothing is written)."""
    draft = new.draft
    notification_id: int | None = await conn.fetchval(
        """
        INSERT INTO notifications (customer_id, vin, topic, subject, outbox_id, dedupe_key,
            category, language, title, body, data, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)
        ON CONFLICT (customer_id, dedupe_key) DO NOTHING
        RETURNING id
        """,
        new.customer_id,
        new.vin,
        new.topic,
        new.subject,
        new.outbox_id,
        draft.dedupe_key or f"{new.topic}|{new.subject}",
        draft.category.value,
        new.language,
        draft.title,
        draft.body,
        json.dumps(draft.data, default=str),
        new.created_at,
    )
    if notification_id is None:
        return None
    now = new.created_at
    await conn.executemany(
        """
        INSERT INTO notification_deliveries (notification_id, channel, state, reason,
            next_attempt_at, created_at, sent_at, suppressed_at)
        VALUES ($1, $2, $3::text, $4, $5::timestamptz, $6::timestamptz,
                CASE WHEN $3 = 'sent' THEN $6 END, CASE WHEN $3 = 'suppressed' THEN $6 END)
        """,
        [
            (
                notification_id,
                p.channel.value,
                p.state.value,
                p.reason.value if p.reason else None,
                p.due_at,
                now,
            )
            for p in plans
        ],
    )
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{new.customer_id}:{notification_id}")
    return notification_id


# -- the inbox ------------------------------------------------------------------------------------


async def list_notifications(
    conn: asyncpg.Connection, customer_id: UUID, *, unread: bool, limit: int, offset: int
) -> tuple[list[NotificationRecord], int]:
    """Newest first; ``unread`` keeps only those not read yet."""
    where = "n.customer_id = $1" + (" AND n.read_at IS NULL" if unread else "")
    count = await conn.fetchval(f"SELECT count(*) FROM notifications n WHERE {where}", customer_id)
    rows = await conn.fetch(
        f"{_SELECT} WHERE {where} ORDER BY n.id DESC LIMIT $2 OFFSET $3",
        customer_id,
        limit,
        offset,
    )
    return [_record(r) for r in rows], int(count)


async def recent_notifications(
    conn: asyncpg.Connection, customer_id: UUID, limit: int
) -> list[NotificationRecord]:
    """The customer's newest notifications with their deliveries (the 720-degree overview)."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE n.customer_id = $1 ORDER BY n.id DESC LIMIT $2", customer_id, limit
    )
    return [_record(r) for r in rows]


async def get_notification(
    conn: asyncpg.Connection, customer_id: UUID, notification_id: int
) -> NotificationRecord:
    row = await conn.fetchrow(
        f"{_SELECT} WHERE n.id = $1 AND n.customer_id = $2", notification_id, customer_id
    )
    if row is None:
        raise NotificationNotFoundError(notification_id)
    return _record(row)


async def mark_read(
    pool: asyncpg.Pool, customer_id: UUID, notification_id: int, *, now: datetime
) -> NotificationRecord:
    """Idempotent: reading it again keeps the first read time. Another customer's
    notification is not found."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchval(
            "UPDATE notifications SET read_at = coalesce(read_at, $3)"
            " WHERE id = $1 AND customer_id = $2 RETURNING id",
            notification_id,
            customer_id,
            now,
        )
        if found is None:
            raise NotificationNotFoundError(notification_id)
        await conn.execute(
            "UPDATE notification_deliveries SET state = 'read', read_at = $2,"
            " delivered_at = coalesce(delivered_at, $2)"
            " WHERE notification_id = $1 AND channel = 'app' AND state IN ('sent', 'delivered')",
            notification_id,
            now,
        )
        return await get_notification(conn, customer_id, notification_id)


# -- the SSE stream -------------------------------------------------------------------------------


async def notifications_after(
    conn: asyncpg.Connection, customer_id: UUID, after_id: int, limit: int
) -> list[NotificationRecord]:
    """Oldest first, ids above ``after_id``. Ids follow commit order (only the notifier inserts,
    its replicas one transaction at a time), so a reader never skips a late commit."""
    rows = await conn.fetch(
        f"{_SELECT} WHERE n.customer_id = $1 AND n.id > $2 ORDER BY n.id LIMIT $3",
        customer_id,
        after_id,
        limit,
    )
    return [_record(r) for r in rows]


async def latest_notifications(
    conn: asyncpg.Connection, customer_id: UUID, count: int
) -> tuple[list[NotificationRecord], int]:
    """The newest ``count``, oldest first, and the newest id (0 for an empty inbox): where a
    stream without Last-Event-ID starts. One statement each way, so the two agree."""
    if count == 0:
        newest = await conn.fetchval(
            "SELECT coalesce(max(id), 0) FROM notifications WHERE customer_id = $1", customer_id
        )
        return [], int(newest)
    rows = await conn.fetch(
        f"{_SELECT} WHERE n.customer_id = $1 ORDER BY n.id DESC LIMIT $2", customer_id, count
    )
    return [_record(r) for r in reversed(rows)], (rows[0]["id"] if rows else 0)


async def mark_app_delivered(
    conn: asyncpg.Connection, notification_ids: Sequence[int], *, now: datetime
) -> None:
    """The stream wrote them to a connected app."""
    await conn.execute(
        "UPDATE notification_deliveries SET state = 'delivered', delivered_at = $2"
        " WHERE notification_id = ANY($1::bigint[]) AND channel = 'app' AND state = 'sent'",
        list(notification_ids),
        now,
    )
