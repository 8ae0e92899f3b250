"""The SSE stream of one customer's notifications (``GET /v1/me/notifications/stream``).

On connect: subscribe first (so nothing committed from now on goes unannounced), then replay --
everything after ``Last-Event-ID`` when the client sends one (a reconnecting ``EventSource``
does), else the newest ``replay`` notifications. Then follow: wake on the hub's announcement
(NOTIFY) or the polling backstop, read what is new from the database, push it; a comment every
``sse_keepalive_s`` keeps proxies from closing an idle connection. Memory per stream is bounded:
at most one batch is held, and the framework's send buffer holds one event, so a slow client
slows its own reads rather than piling up events. The stream ends when the client goes away
(the framework cancels it), when the hub closes (server shutdown), or after the replay when
``follow`` is false.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from fastapi.sse import ServerSentEvent

from api.notifications.hub import NotificationHub
from api.notifications.schemas import notification_public
from api.notifications.settings import NotifySettings
from api.notifications.store import (
    NotificationRecord,
    latest_notifications,
    mark_app_delivered,
    notifications_after,
)

EVENT_NAME = "notification"
RECONNECT_MS = 3000  # the `retry:` hint for EventSource reconnects


@dataclass(frozen=True, slots=True)
class StreamRequest:
    customer_id: UUID
    last_event_id: int | None
    replay: int
    follow: bool


def _event(record: NotificationRecord) -> ServerSentEvent:
    return ServerSentEvent(data=notification_public(record), event=EVENT_NAME, id=str(record.id))


async def notification_stream(
    pool: asyncpg.Pool,
    hub: NotificationHub,
    request: StreamRequest,
    settings: NotifySettings,
    now: Callable[[], datetime],
) -> AsyncIterator[ServerSentEvent]:
    loop = asyncio.get_running_loop()
    customer = request.customer_id

    async def pushed(records: Sequence[NotificationRecord]) -> None:
        async with pool.acquire() as conn:
            await mark_app_delivered(conn, [r.id for r in records], now=now())

    async with hub.subscribe(customer) as subscription:
        yield ServerSentEvent(comment="connected", retry=RECONNECT_MS)
        if request.last_event_id is not None:
            last = request.last_event_id
        else:
            async with pool.acquire() as conn:
                replay, last = await latest_notifications(conn, customer, request.replay)
            for record in replay:
                yield _event(record)
            if replay:
                await pushed(replay)
        last_write = loop.time()
        while True:
            async with pool.acquire() as conn:
                batch = await notifications_after(conn, customer, last, settings.sse_batch)
            for record in batch:
                yield _event(record)
                last = record.id
            if batch:
                await pushed(batch)
                last_write = loop.time()
                if len(batch) == settings.sse_batch:
                    continue  # more are waiting
            if not request.follow or subscription.is_closed():
                return
            until_keepalive = settings.sse_keepalive_s - (loop.time() - last_write)
            if until_keepalive <= 0:
                yield ServerSentEvent(comment="keep-alive")
                last_write = loop.time()
                continue
            await subscription.wait(min(settings.sse_poll_interval_s, until_keepalive))
            if subscription.is_closed():
                return
