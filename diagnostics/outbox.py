"""The transactional outbox (ADR 0007): append in the cause's transaction, consume in commit order.

Producers call :func:`append` (or the SQL function ``outbox_append``) inside the transaction that
makes the change. A consumer is a named :class:`OutboxConsumer` with a handler; it reads new
events in commit order, lets the handler act on each inside the same transaction that advances
its cursor (so whatever the handler writes happens exactly once), and wakes on ``NOTIFY outbox``
with a polling backstop. Several replicas of one consumer share its cursor and take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 200
DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_RETRY_DELAY_S = 2.0
CHANNEL = "outbox"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    topic: str
    subject: str
    vin: str | None
    customer_id: UUID | None
    payload: Mapping[str, Any]
    occurred_at: datetime


class OutboxHandler(Protocol):
    """Acts on one event with ``conn``, inside the consumer's transaction. Raising rolls back
    what it wrote for that event; the event is then recorded in ``outbox_failures`` and
    skipped."""

    async def handle(self, conn: asyncpg.Connection, event: OutboxEvent) -> None: ...


async def append(
    conn: asyncpg.Connection,
    topic: str,
    subject: str,
    payload: Mapping[str, Any],
    *,
    occurred_at: datetime,
    vin: str | None = None,
    customer_id: UUID | None = None,
) -> int:
    """Append one event in ``conn``'s current transaction; returns its id."""
    event_id: int = await conn.fetchval(
        "SELECT outbox_append($1, $2, $3, $4, $5::jsonb, $6)",
        topic,
        subject,
        vin,
        customer_id,
        json.dumps(payload, default=str),
        occurred_at,
    )
    return event_id


_READ = """
SELECT id, txid::text AS txid, topic, subject, vin, customer_id, payload::text AS payload,
       occurred_at
FROM outbox
WHERE (txid, id) > ($1::text::xid8, $2::bigint)
  AND txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY txid, id
LIMIT $3
"""


def _event(row: asyncpg.Record) -> OutboxEvent:
    return OutboxEvent(
        id=row["id"],
        topic=row["topic"],
        subject=row["subject"],
        vin=row["vin"],
        customer_id=row["customer_id"],
        payload=json.loads(row["payload"]),
        occurred_at=row["occurred_at"],
    )


class OutboxConsumer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        name: str,
        handler: OutboxHandler,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        retry_delay_s: float = DEFAULT_RETRY_DELAY_S,
    ) -> None:
        self._pool = pool
        self.name = name
        self._handler = handler
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._retry_delay_s = retry_delay_s
        self._wake = asyncio.Event()
        self.handled = 0
        self.failed = 0
        self.listening = asyncio.Event()

    async def process_pending(self) -> int:
        """Handle every event committed so far (in batches); returns how many were handled.
        Tests and the eval call this directly; :meth:`run` calls it on each wake-up."""
        total = 0
        while True:
            count = await self._process_batch()
            total += count
            if count < self._batch_size:
                return total

    async def _process_batch(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO outbox_cursors (consumer) VALUES ($1) ON CONFLICT DO NOTHING",
                self.name,
            )
            cursor = await conn.fetchrow(
                "SELECT txid::text AS txid, id FROM outbox_cursors WHERE consumer = $1 FOR UPDATE",
                self.name,
            )
            rows = await conn.fetch(_READ, cursor["txid"], cursor["id"], self._batch_size)
            for row in rows:
                await self._handle_one(conn, _event(row))
            if rows:
                await conn.execute(
                    "UPDATE outbox_cursors SET txid = $2::text::xid8, id = $3, updated_at = now() "
                    "WHERE consumer = $1",
                    self.name,
                    rows[-1]["txid"],
                    rows[-1]["id"],
                )
            return len(rows)

    async def _handle_one(self, conn: asyncpg.Connection, event: OutboxEvent) -> None:
        try:
            async with conn.transaction():  # a savepoint: a failure undoes only this event
                await self._handler.handle(conn, event)
            self.handled += 1
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
            raise  # the connection is gone: the whole batch is retried, nothing skipped
        except Exception as exc:
            self.failed += 1
            log.exception(
                "outbox consumer %s failed on event %d (%s); recorded and skipped",
                self.name,
                event.id,
                event.topic,
            )
            await conn.execute(
                "INSERT INTO outbox_failures (consumer, outbox_id, error) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                self.name,
                event.id,
                f"{type(exc).__name__}: {exc}"[:2000],
            )

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set: on every NOTIFY, and every poll interval (a NOTIFY can
        arrive while an older transaction still holds the events back)."""
        listener: asyncpg.Connection | None = None
        try:
            while not stop.is_set():
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                try:
                    await self.process_pending()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("outbox consumer %s: %s; retrying", self.name, exc)
                    await _sleep_until(stop, self._retry_delay_s)
                    continue
                await _sleep_until(stop, self._poll_interval_s, self._wake)
                self._wake.clear()
        finally:
            if listener is not None and not listener.is_closed():
                with contextlib.suppress(Exception):
                    await listener.remove_listener(CHANNEL, self._notified)
                await self._pool.release(listener)

    async def _listen(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await self._pool.acquire()
        await conn.add_listener(CHANNEL, self._notified)
        self.listening.set()
        return conn


async def _sleep_until(stop: asyncio.Event, timeout_s: float, *others: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in (stop, *others)]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def prune(conn: asyncpg.Connection, *, older_than: datetime) -> int:
    """Delete events older than ``older_than`` that every consumer has passed."""
    status: str = await conn.execute(
        """
        DELETE FROM outbox o
        WHERE o.occurred_at < $1
          AND NOT EXISTS (
              SELECT 1 FROM outbox_cursors c WHERE (c.txid, c.id) < (o.txid, o.id))
        """,
        older_than,
    )
    return int(status.rsplit(maxsplit=1)[-1])
