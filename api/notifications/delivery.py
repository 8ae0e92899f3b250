"""The delivery loop: takes due deliveries, sends them through the channel adapters, records
what happened. At least once, never holding a row lock across the network:

1. claim (one short transaction): due ``queued`` rows, ``FOR UPDATE SKIP LOCKED`` so that
   replicas take different rows; each gets ``attempts + 1`` and a lease (``next_attempt_at`` moved
   ``claim_lease_s`` ahead), so a sender that dies mid-send leaves it to be taken again;
2. send, each bounded by ``send_timeout_s``, a few at a time;
3. record (one short statement per delivery, only if the claim still holds): ``sent``; or
   queued again after an exponential backoff; or ``failed`` (a permanent refusal, or
   ``max_attempts`` used up); or ``suppressed`` (no adapter for the channel here, e.g. SMS; or the
   customer dropped the channel while it waited for the end of quiet hours).

Wakes on ``NOTIFY notifications`` with a polling backstop (deferred and retried deliveries
become due by time alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from api.notifications.adapters import ChannelAdapter, OutgoingMessage
from api.notifications.email import SmtpAdapter
from api.notifications.errors import DeliveryError
from api.notifications.in_car import InCarAdapter
from api.notifications.model import Category, Channel, Reason, no_provider
from api.notifications.settings import NotifySettings
from api.notifications.store import CHANNEL
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms
from protocol.endpoint import MqttEndpoint

log = logging.getLogger(__name__)

RETRY_DELAY_S = 2.0  # after a database error in run()
MAX_ERROR_LENGTH = 1000

_CLAIM = """
WITH due AS (
    SELECT id FROM notification_deliveries
    WHERE state = 'queued' AND next_attempt_at <= $1
    ORDER BY next_attempt_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE notification_deliveries d
SET attempts = d.attempts + 1, last_attempt_at = $1,
    next_attempt_at = $1 + make_interval(secs => $3)
FROM due, notifications n, customers c
WHERE d.id = due.id AND n.id = d.notification_id AND c.id = n.customer_id
RETURNING d.id, d.channel, d.attempts, n.id AS notification_id, n.category, n.language,
          n.title, n.body, n.vin, c.email, c.phone, c.preferred_channels
"""

# Every outcome applies only while the claim holds: still queued, with the attempt we made.
_HELD = "WHERE id = $1 AND state = 'queued' AND attempts = $2"


def retry_delay(attempts: int, *, base_s: float, max_s: float) -> timedelta:
    """Exponential backoff: base, 2 x base, 4 x base, ... capped at ``max_s``."""
    return timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), max_s))


@dataclass(frozen=True, slots=True)
class Claim:
    message: OutgoingMessage
    attempts: int
    still_preferred: bool


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0


def adapters_from(
    settings: NotifySettings, *, mqtt: MqttEndpoint | None
) -> dict[Channel, ChannelAdapter]:
    """E-mail when an SMTP host is set; in-car when given the broker with commander
    credentials. No SMS provider exists here: SMS deliveries are suppressed (no_sms_provider)."""
    adapters: dict[Channel, ChannelAdapter] = {}
    if settings.email_enabled:
        adapters[Channel.EMAIL] = SmtpAdapter(settings)
    if mqtt is not None:
        adapters[Channel.IN_CAR] = InCarAdapter(
            mqtt, publish_timeout_s=settings.mqtt_publish_timeout_s
        )
    return adapters


class DeliveryLoop:
    def __init__(
        self,
        pool: asyncpg.Pool,
        adapters: Mapping[Channel, ChannelAdapter],
        *,
        settings: NotifySettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._pool = pool
        self._adapters = dict(adapters)
        self._settings = settings if settings is not None else NotifySettings()
        self._clock = clock
        self._wake = asyncio.Event()
        self.stats = DeliveryStats()
        self.listening = asyncio.Event()

    @classmethod
    def from_settings(
        cls,
        pool: asyncpg.Pool,
        settings: NotifySettings,
        *,
        mqtt: MqttEndpoint | None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> DeliveryLoop:
        return cls(pool, adapters_from(settings, mqtt=mqtt), settings=settings, clock=clock)

    def _now(self) -> datetime:
        return utc_from_ms(self._clock.now_ms())

    async def deliver_due(self) -> int:
        """Send every delivery due now, in batches; returns how many were attempted. Tests
        call it directly; :meth:`run` calls it on each wake-up."""
        total = 0
        while True:
            claims = await self._claim()
            if claims:
                semaphore = asyncio.Semaphore(self._settings.max_concurrent_sends)
                await asyncio.gather(*(self._deliver(c, semaphore) for c in claims))
            total += len(claims)
            if len(claims) < self._settings.batch_size:
                return total

    async def _claim(self) -> list[Claim]:
        rows = await self._pool.fetch(
            _CLAIM, self._now(), self._settings.batch_size, self._settings.claim_lease_s
        )
        return [
            Claim(
                message=OutgoingMessage(
                    delivery_id=r["id"],
                    notification_id=r["notification_id"],
                    channel=Channel(r["channel"]),
                    category=Category(r["category"]),
                    language=r["language"],
                    title=r["title"],
                    body=r["body"],
                    vin=r["vin"],
                    email=r["email"],
                    phone=r["phone"],
                    issued_at=self._now(),
                ),
                attempts=r["attempts"],
                still_preferred=r["channel"] in r["preferred_channels"],
            )
            for r in rows
        ]

    async def _deliver(self, claim: Claim, semaphore: asyncio.Semaphore) -> None:
        message = claim.message
        if not claim.still_preferred:
            await self._suppress(claim, Reason.CHANNEL_NOT_PREFERRED.value)
            return
        adapter = self._adapters.get(message.channel)
        if adapter is None:
            await self._suppress(claim, no_provider(message.channel))
            return
        async with semaphore:
            try:
                async with asyncio.timeout(self._settings.send_timeout_s):
                    await adapter.send(message)
            except DeliveryError as exc:
                await self._failed_attempt(claim, exc)
                return
            except TimeoutError:
                timeout = DeliveryError("delivery_timeout", "the send timed out")
                await self._failed_attempt(claim, timeout)
                return
            except Exception as exc:  # an adapter bug must not stop the loop
                log.exception("notification delivery %d: adapter error", message.delivery_id)
                await self._failed_attempt(claim, DeliveryError("adapter_error", repr(exc)))
                return
        await self._pool.execute(
            "UPDATE notification_deliveries SET state = 'sent', sent_at = $3,"
            f" next_attempt_at = NULL, reason = NULL {_HELD}",
            message.delivery_id,
            claim.attempts,
            self._now(),
        )
        self.stats.sent += 1

    async def _suppress(self, claim: Claim, reason: str) -> None:
        await self._pool.execute(
            "UPDATE notification_deliveries SET state = 'suppressed', reason = $3,"
            f" suppressed_at = $4, next_attempt_at = NULL {_HELD}",
            claim.message.delivery_id,
            claim.attempts,
            reason,
            self._now(),
        )
        self.stats.suppressed += 1

    async def _failed_attempt(self, claim: Claim, error: DeliveryError) -> None:
        s = self._settings
        now = self._now()
        detail = f"{error.code}: {error}"[:MAX_ERROR_LENGTH]
        log.warning(
            "notification delivery %d (%s) attempt %d failed: %s",
            claim.message.delivery_id,
            claim.message.channel.value,
            claim.attempts,
            error.code,
        )
        if not error.permanent and claim.attempts < s.max_attempts:
            due = now + retry_delay(claim.attempts, base_s=s.retry_base_s, max_s=s.retry_max_s)
            await self._pool.execute(
                f"UPDATE notification_deliveries SET next_attempt_at = $3, last_error = $4 {_HELD}",
                claim.message.delivery_id,
                claim.attempts,
                due,
                detail,
            )
            self.stats.retried += 1
            return
        reason = Reason.REJECTED if error.permanent else Reason.RETRIES_EXHAUSTED
        await self._pool.execute(
            "UPDATE notification_deliveries SET state = 'failed', reason = $3, last_error = $4,"
            f" failed_at = $5, next_attempt_at = NULL {_HELD}",
            claim.message.delivery_id,
            claim.attempts,
            reason.value,
            detail,
            now,
        )
        self.stats.failed += 1

    async def aclose(self) -> None:
        """Close the adapters' connections (``run`` does on its way out; callers of
        :meth:`deliver_due` do when done)."""
        for adapter in self._adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; closes the adapters on the way out."""
        listener: asyncpg.Connection | None = None
        try:
            while not stop.is_set():
                try:
                    if listener is None or listener.is_closed():
                        listener = await self._listen()
                    self._wake.clear()
                    await self.deliver_due()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("notification delivery loop: %s; retrying", exc)
                    await _wait_any(stop, timeout_s=RETRY_DELAY_S)
                    continue
                await _wait_any(stop, self._wake, timeout_s=self._settings.poll_interval_s)
        finally:
            await self.aclose()
            if listener is not None and not listener.is_closed():
                with contextlib.suppress(Exception):
                    await listener.remove_listener(CHANNEL, self._notified)
                await self._pool.release(listener)

    async def _listen(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await self._pool.acquire()
        await conn.add_listener(CHANNEL, self._notified)
        self.listening.set()
        return conn


async def _wait_any(*events: asyncio.Event, timeout_s: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
