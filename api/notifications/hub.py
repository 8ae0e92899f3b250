"""Fan-out of ``NOTIFY notifications`` to the open SSE streams of one API process.

One database connection listens for the whole process (not one per stream: a thousand open apps
must not hold a thousand pool connections), only while at least one stream is open. Each stream
has a :class:`Subscription` with a bounded queue of announced notification ids. The database
stays the source of truth: a woken stream reads everything after the last id it sent, so an
announcement dropped because the queue was full (counted and logged) or missed while the
listener reconnected (every stream is woken after a reconnect) costs nothing but latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg

from api.notifications.settings import DEFAULT_SSE_QUEUE_SIZE
from api.notifications.store import CHANNEL

log = logging.getLogger(__name__)

LISTENER_CHECK_S = 1.0  # how often the listener checks its connection and its subscribers
RECONNECT_DELAY_S = 1.0


class Subscription:
    def __init__(self, customer_id: UUID, queue_size: int) -> None:
        self.customer_id = customer_id
        self._queue: asyncio.Queue[int] = asyncio.Queue(maxsize=queue_size)
        self._closed = asyncio.Event()
        self.dropped = 0

    def is_closed(self) -> bool:
        return self._closed.is_set()

    def announce(self, notification_id: int) -> None:
        try:
            self._queue.put_nowait(notification_id)
        except asyncio.QueueFull:
            if self.dropped == 0:
                log.info(
                    "notification stream of %s is behind; it will catch up from the database",
                    self.customer_id,
                )
            self.dropped += 1

    def close(self) -> None:
        self._closed.set()

    async def wait(self, timeout_s: float) -> bool:
        """Until something was announced (True), the timeout (False), or close (True)."""
        if self._closed.is_set() or self._drain():
            return True
        getter = asyncio.ensure_future(self._queue.get())
        closer = asyncio.ensure_future(self._closed.wait())
        try:
            done, _ = await asyncio.wait(
                {getter, closer}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            getter.cancel()
            closer.cancel()
        self._drain()
        return bool(done)

    def _drain(self) -> bool:
        drained = False
        while not self._queue.empty():
            self._queue.get_nowait()
            drained = True
        return drained


class NotificationHub:
    def __init__(self, pool: asyncpg.Pool, *, queue_size: int = DEFAULT_SSE_QUEUE_SIZE) -> None:
        self._pool = pool
        self._queue_size = queue_size
        self._subscriptions: dict[UUID, set[Subscription]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        # Set when the listener should look again: a stream left, the hub closed, the
        # connection died.
        self._changed = asyncio.Event()
        self.listening = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._subscriptions.values())

    @contextlib.asynccontextmanager
    async def subscribe(self, customer_id: UUID) -> AsyncIterator[Subscription]:
        subscription = Subscription(customer_id, self._queue_size)
        if self._closed:
            subscription.close()
            yield subscription
            return
        self._subscriptions.setdefault(customer_id, set()).add(subscription)
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="notification hub")
        try:
            yield subscription
        finally:
            peers = self._subscriptions.get(customer_id)
            if peers is not None:
                peers.discard(subscription)
                if not peers:
                    del self._subscriptions[customer_id]
            self._changed.set()

    async def close(self) -> None:
        """End every stream (server shutdown) and stop listening. Idempotent."""
        self._closed = True
        self._changed.set()
        for subscription in self._all():
            subscription.close()
        listener = self._listener
        if listener is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    def _all(self) -> list[Subscription]:
        return [s for peers in self._subscriptions.values() for s in peers]

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        customer, _, notification = payload.partition(":")
        try:
            peers = self._subscriptions.get(UUID(customer), ())
            notification_id = int(notification)
        except ValueError:
            log.warning("notification hub: malformed NOTIFY payload %r", payload[:100])
            return
        for subscription in peers:
            subscription.announce(notification_id)

    def _terminated(self, _conn: object) -> None:
        self._changed.set()

    def _idle(self) -> bool:
        return self._closed or not self._subscriptions

    async def _listen(self) -> None:
        """Listen while anyone is subscribed; reconnect when the connection drops."""
        try:
            while not self._idle():
                try:
                    await self._listen_once()
                except Exception as exc:  # never die quietly: open streams depend on it
                    log.warning(
                        "notification hub: listener lost (%s: %s); reconnecting",
                        type(exc).__name__,
                        exc,
                    )
                    self.listening.clear()
                    await asyncio.sleep(RECONNECT_DELAY_S)
        finally:
            self.listening.clear()
            # Decided and cleared in one step: a subscriber arriving later starts a new one.
            self._listener = None

    async def _listen_once(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.add_listener(CHANNEL, self._notified)
            conn.add_termination_listener(self._terminated)
            try:
                self.listening.set()
                # Anything committed before LISTEN took effect was not announced: look again.
                for subscription in self._all():
                    subscription.announce(0)
                while not self._idle() and not conn.is_closed():
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), LISTENER_CHECK_S)
                lost = conn.is_closed()
            finally:
                if not conn.is_closed():
                    conn.remove_termination_listener(self._terminated)
                    with contextlib.suppress(Exception):
                        await conn.remove_listener(CHANNEL, self._notified)
        if lost:
            raise OSError("listener connection closed")
