"""The entitlement push service: signs each vehicle's newest document version and publishes it
on ``v1/vehicles/{VIN}/commands`` (``type: entitlements``, QoS 1).

A push is due when the vehicle's entitlements changed (a new version was allocated in the
changing transaction) or when the vehicle came online (presence stored by ingest): the newest
document is then pushed again, so a car that was offline when a feature was revoked gets the
revocation at its next connection. A newest document close to its expiry is re-signed as a new
version first, so the car accepts it however long it was away.

Wakes on ``NOTIFY entitlement_push`` with a polling backstop (retries fall due by time alone).
Safe as several replicas (``FOR UPDATE SKIP LOCKED`` claims with a lease); a push is at least
once, and the command id (``entitlements-<VIN>-<version>``) lets the car drop a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from pydantic import ValidationError

from ota.entitlements.documents import (
    CHANNEL,
    DueHead,
    StoredDocument,
    allocate_version,
    claim_due,
    granted_features,
    newest_documents,
    record_failed,
    record_pushed,
    store_document,
)
from ota.entitlements.errors import EntitlementPushError
from ota.entitlements.keys import EntitlementKeys
from ota.entitlements.publisher import CommandPublisher, MqttCommandPublisher
from ota.entitlements.settings import EntitlementSettings
from ota.entitlements.signing import build_document, sign_document
from ota.errors import OtaError
from ota.tuf_api import CryptoSigner
from protocol.clock import SYSTEM_CLOCK, Clock
from protocol.endpoint import MqttEndpoint
from protocol.entitlements import command_id, encode_body
from protocol.messages import CommandMessage, CommandType

log = logging.getLogger(__name__)

RETRY_DELAY_S = 2.0  # after a database or key error in run()


@dataclass
class PushStats:
    signed: int = 0
    pushed: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class _Push:
    head: DueHead
    document: StoredDocument


def retry_delay(attempts: int, *, base_s: float, max_s: float) -> timedelta:
    return timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), max_s))


class EntitlementPusher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        keys: EntitlementKeys,
        publisher: CommandPublisher,
        *,
        settings: EntitlementSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._pool = pool
        self._keys = keys
        self._publisher = publisher
        self._settings = settings if settings is not None else EntitlementSettings()
        self._clock = clock
        self._wake = asyncio.Event()
        self.stats = PushStats()
        self.listening = asyncio.Event()

    @classmethod
    def from_settings(
        cls,
        pool: asyncpg.Pool,
        keys_dir: Path,
        mqtt: MqttEndpoint,
        *,
        settings: EntitlementSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> EntitlementPusher:
        """``keys_dir``: the OTA online key directory (``OtaSettings().keys_dir``); ``mqtt``:
        the broker with a ``commander`` identity."""
        settings = settings if settings is not None else EntitlementSettings()
        publisher = MqttCommandPublisher(mqtt, publish_timeout_s=settings.publish_timeout_s)
        return cls(pool, EntitlementKeys(keys_dir), publisher, settings=settings, clock=clock)

    async def push_due(self) -> int:
        """Sign and push everything due now, in batches; returns how many pushes were tried.
        Tests call it directly; :meth:`run` calls it on each wake-up."""
        total = 0
        signers = await asyncio.to_thread(self._keys.signers)
        while True:
            pushes, claimed = await self._prepare(signers)
            if pushes:
                semaphore = asyncio.Semaphore(self._settings.max_concurrent_pushes)
                await asyncio.gather(*(self._push(p, semaphore) for p in pushes))
            total += len(pushes)
            if claimed < self._settings.batch_size:
                return total

    def _now(self) -> tuple[int, datetime]:
        now_ms = self._clock.now_ms()
        return now_ms, datetime.fromtimestamp(now_ms / 1000, UTC)

    def _stale(self, document: StoredDocument, now: datetime) -> bool:
        s = self._settings
        remaining = document.expires_at - now
        return remaining < timedelta(seconds=s.document_lifetime_s * s.refresh_remaining_ratio)

    async def _prepare(self, signers: list[CryptoSigner]) -> tuple[list[_Push], int]:
        """Claim due vehicles and sign what needs signing, in one transaction."""
        s = self._settings
        now_ms, now = self._now()
        unsignable: dict[DueHead, str] = {}
        async with self._pool.acquire() as conn, conn.transaction():
            due = await claim_due(conn, now, s.batch_size, s.lease_s)
            if not due:
                return [], 0
            newest = await newest_documents(conn, [h.vin for h in due])
            to_sign: dict[str, int] = {}
            for head in due:
                stored = newest.get(head.vin)
                if head.version > head.signed_version:
                    to_sign[head.vin] = head.version
                elif stored is None or self._stale(stored, now):
                    to_sign[head.vin] = await allocate_version(conn, head.vin, now)
            features = await granted_features(conn, list(to_sign), now)
            heads = {h.vin: h for h in due}
            for vin, version in to_sign.items():
                try:
                    document = build_document(
                        vin,
                        version,
                        features[vin],
                        now_ms=now_ms,
                        lifetime_ms=s.document_lifetime_ms,
                    )
                except ValidationError as exc:  # e.g. rows written around the API's limits
                    unsignable[heads[vin]] = f"entitlement_unsignable: {exc}"
                    continue
                envelope = sign_document(document, signers)
                newest[vin] = await store_document(conn, document, encode_body(document), envelope)
                self.stats.signed += 1
        for head, error in unsignable.items():
            log.error("entitlements of %s cannot be signed: %s", head.vin, error[:300])
            await self._failed(head, error)
        pushes = [_Push(h, newest[h.vin]) for h in due if h not in unsignable and h.vin in newest]
        return pushes, len(due)

    async def _push(self, push: _Push, semaphore: asyncio.Semaphore) -> None:
        head, document = push.head, push.document
        now_ms, now = self._now()
        command = CommandMessage(
            id=command_id(head.vin, document.version),
            type=CommandType.ENTITLEMENTS,
            ts=now_ms,
            payload={"document": document.envelope},
        )
        async with semaphore:
            try:
                async with asyncio.timeout(self._settings.publish_timeout_s + 1):
                    await self._publisher.publish(head.vin, command)
            except (EntitlementPushError, TimeoutError) as exc:
                log.warning("entitlement push to %s failed: %s", head.vin, exc)
                await self._failed(head, f"{getattr(exc, 'code', 'timeout')}: {exc}")
                return
        await record_pushed(
            self._pool, head.vin, requests=head.push_requests, version=document.version, now=now
        )
        self.stats.pushed += 1

    async def _failed(self, head: DueHead, error: str) -> None:
        s = self._settings
        _, now = self._now()
        delay = retry_delay(head.attempts, base_s=s.retry_base_s, max_s=s.retry_max_s)
        await record_failed(self._pool, head.vin, retry_at=now + delay, error=error)
        self.stats.failed += 1

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Push until ``stop``; closes the MQTT connection on the way out."""
        listener: asyncpg.Connection | None = None
        try:
            while not stop.is_set():
                try:
                    if listener is None or listener.is_closed():
                        listener = await self._listen()
                    self._wake.clear()
                    await self.push_due()
                except OtaError as exc:  # no key yet, ...: an operator must act
                    log.error("entitlement push: %s", exc, extra={"code": exc.code})
                    await _wait_any(stop, timeout_s=self._settings.poll_interval_s)
                    continue
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("entitlement push: %s; retrying", exc)
                    await _wait_any(stop, timeout_s=RETRY_DELAY_S)
                    continue
                await _wait_any(stop, self._wake, timeout_s=self._settings.poll_interval_s)
        finally:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()
            if listener is not None and not listener.is_closed():
                with contextlib.suppress(Exception):
                    await listener.remove_listener(CHANNEL, self._notified)
                await self._pool.release(listener)
            self.listening.clear()

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
