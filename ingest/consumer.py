"""MQTT -> validation -> batch -> commit -> PUBACK.

Delivery guarantee: messages are QoS 1 on a persistent session, and each PUBACK is sent only
after the batch holding the message has committed (paho's manual ack, reached through aiomqtt).
If the worker dies before the commit, the broker redelivers; if it dies after the commit but
before the ack, the redelivered samples hit the primary key and are not stored twice. So storage
is exactly-once on top of at-least-once delivery.

Backpressure: when the database is slow or down the worker stops taking from its bounded queue,
retries the batch with backoff, and acknowledges nothing until it commits; a broker with an
in-flight window (Mosquitto's max_inflight_messages, MQTT 5 Receive Maximum) then stops sending.
The embedded amqtt broker (MQTT 3.1.1) has no such window: aiomqtt then buffers what arrives in
memory. Fine for the one-machine stack; production runs Mosquitto or another real broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.batch_builder import BatchBuilder, Received, dead_letter
from ingest.errors import RejectReason, StoreDataError, StoreUnavailableError
from ingest.location_consent import LocationConsent
from ingest.settings import IngestSettings
from ingest.stats import IngestStats
from ingest.store import DAY_MS, Batch, TelemetryStore
from ingest.validation import ValidationLimits
from protocol.aio import first_of
from protocol.clock import SYSTEM_CLOCK, Clock
from protocol.endpoint import MqttEndpoint
from protocol.errors import InvalidTopicError
from protocol.topics import TopicKind, fleet_subscription, parse_vehicle_topic

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
PARTITION_MAINTENANCE_INTERVAL_S = 3600.0


def _paho(client: aiomqtt.Client) -> paho.Client:
    # aiomqtt has no manual-ack API; the paho client underneath does (paho >= 2.0).
    inner: paho.Client = client._client
    return inner


def _received(message: aiomqtt.Message) -> Received:
    # paho delivers bytes; aiomqtt's type also allows str/int/float/None, which MQTT never sends.
    payload = message.payload
    return Received(
        message.topic.value,
        bytes(payload) if isinstance(payload, bytes | bytearray) else b"",
        message.retain,
    )


def _unstorable(message: Received, exc: StoreDataError) -> Batch:
    try:
        vin: str | None = parse_vehicle_topic(message.topic).vin
    except InvalidTopicError:
        vin = None
    batch = Batch()
    batch.dead_letters.append(
        dead_letter(vin, message.topic, RejectReason.UNSTORABLE, str(exc), message.payload)
    )
    return batch


class IngestWorker:
    def __init__(
        self,
        store: TelemetryStore,
        endpoint: MqttEndpoint,
        settings: IngestSettings | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        stats: IngestStats | None = None,
        consent: LocationConsent | None = None,
        on_commit: Callable[[Batch], None] | None = None,
    ) -> None:
        """``consent``: whose positions may be stored; without it, everyone's are.
        ``on_commit``: called with each batch once it is committed (the diagnostics hand-off);
        it must return at once (enqueue, never wait) and its failures never stop ingest."""
        self._store = store
        self._consent = consent
        self._on_commit = on_commit
        self._endpoint = endpoint
        self._settings = settings or IngestSettings()
        self._clock = clock
        self.stats = stats or IngestStats()
        self.subscribed = asyncio.Event()
        s = self._settings
        self._limits = ValidationLimits(
            max_payload_bytes=s.max_payload_bytes,
            future_tolerance_ms=s.future_tolerance_ms,
            max_age_ms=s.retention_days * DAY_MS,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; reconnects on broker loss."""
        # The partitions the next days need are made up front, off the hot path.
        now = self._clock.now_ms()
        await self._ensure_partitions_with_retry(
            now - self._limits.max_age_ms, now + 2 * DAY_MS, stop
        )
        background = [asyncio.create_task(self._maintain_partitions(stop), name="partitions")]
        try:
            if self._consent is not None:
                background.append(asyncio.create_task(self._consent.watch(stop), name="consent"))
                # No position may be stored before the consent of its owner is known.
                await first_of(self._consent.ready.wait(), stop.wait())
            await self._consume_until(stop)
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _maintain_partitions(self, stop: asyncio.Event) -> None:
        """At start and then hourly: the next days' partitions exist before data arrives, and
        the retention setting is applied: TimescaleDB's policies follow it, and on native
        partitions the days past the window are dropped (idempotent across workers)."""
        while not stop.is_set():
            now = self._clock.now_ms()
            try:
                await self._store.ensure_partitions(now, now + 2 * DAY_MS)
                # Logs what it changes or drops itself.
                await self._store.apply_retention(
                    retention_days=self._settings.retention_days, now_ms=now
                )
            except StoreUnavailableError as exc:
                log.warning("ingest: partition maintenance postponed (%s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PARTITION_MAINTENANCE_INTERVAL_S)

    async def _consume_until(self, stop: asyncio.Event) -> None:
        backoff_s = 0.5
        while not stop.is_set():
            try:
                async with self._client() as client:
                    backoff_s = 0.5
                    await self._consume(client, stop)
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                log.warning(
                    "ingest: broker connection lost (%s); reconnecting in %.1f s", exc, backoff_s
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff_s * (0.5 + random.random()))
                backoff_s = min(backoff_s * 2, 30.0)
        self.subscribed.clear()

    def _client(self) -> aiomqtt.Client:
        s = self._settings
        v5 = s.mqtt_version == "5"
        properties = None
        if v5:
            # MQTT 5 keeps a session only as long as its expiry interval (section 3.1.2.11.2).
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        client = aiomqtt.Client(
            self._endpoint.host,
            self._endpoint.port,
            identifier=s.client_id,
            username=self._endpoint.username,
            password=self._endpoint.password,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            # A persistent session: what arrives while we are away (or dead) is kept for us.
            clean_session=None if v5 else False,
            clean_start=False if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
            keepalive=30,
            timeout=10,
        )
        _paho(client).manual_ack_set(True)
        return client

    async def _consume(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        s = self._settings
        for kind in (TopicKind.TELEMETRY, TopicKind.EVENTS, TopicKind.PRESENCE):
            await client.subscribe(fleet_subscription(kind, share_group=s.share_group), qos=1)
        self.subscribed.set()
        log.info(
            "ingest: subscribed to telemetry, events and presence as %s on %s",
            s.client_id,
            self._endpoint,
        )
        queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue(maxsize=s.queue_max_messages)
        reader = asyncio.create_task(self._read(client, queue))
        # One batch commits while the next is built, so Python's work on the messages overlaps
        # the database's; the next commit starts only after the previous one has ended (and
        # been acknowledged), so acknowledgements keep the order of the messages.
        committing: asyncio.Task[bool] | None = None
        try:
            while not stop.is_set() or not queue.empty():
                if stop.is_set() and not reader.done():
                    # Stopping: take nothing more from the broker (it keeps the rest for our
                    # session) and drain only what is already queued, one attempt per batch.
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                        await reader
                if reader.done() and queue.empty():
                    break
                messages, batch = await self._next_batch(queue, stop, reader)
                if committing is not None:
                    committed, committing = await committing, None
                    if not committed:
                        return  # gave up at stop: the broker keeps the rest for our session
                if messages:
                    committing = asyncio.create_task(
                        self._commit_and_ack(client, messages, batch, stop)
                    )
            if committing is not None:
                await committing
                committing = None
            if reader.done() and not reader.cancelled():
                reader.result()  # re-raises the broker error that ended the reader
        finally:
            for task in (reader, committing):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                        await task

    async def _read(self, client: aiomqtt.Client, queue: asyncio.Queue[aiomqtt.Message]) -> None:
        async for message in client.messages:
            await queue.put(message)  # blocks while the writer is behind: backpressure
            self.stats.queue_depth = queue.qsize()

    async def _next_batch(
        self, queue: asyncio.Queue[aiomqtt.Message], stop: asyncio.Event, reader: asyncio.Task[None]
    ) -> tuple[list[aiomqtt.Message], Batch]:
        """The next messages, and their batch, built as they are taken from the queue."""
        s = self._settings
        messages: list[aiomqtt.Message] = []
        builder = self._builder()
        deadline: float | None = None
        while len(messages) < s.batch_max_messages:
            if not queue.empty():
                message = queue.get_nowait()
            else:
                if stop.is_set() or reader.done():
                    break
                timeout = (
                    s.flush_interval_ms / 1000 if deadline is None else deadline - time.monotonic()
                )
                if timeout <= 0:
                    break
                try:
                    message = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    if messages:
                        break
                    continue
            messages.append(message)
            builder.add(_received(message))
            if deadline is None:
                deadline = time.monotonic() + s.flush_interval_ms / 1000
            # Back to the loop after every message: the commit in flight sends its data, and
            # paho, which reads one packet per callback, reads the next (yielding every 8
            # messages starved it: batches shrank and lag grew).
            await asyncio.sleep(0)
        self.stats.queue_depth = queue.qsize()
        return messages, builder.finish()

    def _builder(self) -> BatchBuilder:
        return BatchBuilder(now_ms=self._clock.now_ms(), limits=self._limits, consent=self._consent)

    def _account(self, batch: Batch, messages: int, seconds: float) -> None:
        """Counters and one log event per rejection, once the batch is committed (a batch
        that is retried or split is not counted twice)."""
        self.stats.messages += messages
        self.stats.samples += batch.samples
        self.stats.readings += batch.readings
        self.stats.events += len(batch.events)
        self.stats.positions_withheld += batch.positions_withheld
        self.stats.fast_path_messages += batch.fast_messages
        for dead in batch.dead_letters:
            self.stats.rejects[dead.rejection.reason.value] += 1
            log.info(
                "ingest.rejected",
                extra={
                    "vin": dead.vin,
                    "topic": dead.topic,
                    "reason": dead.rejection.reason.value,
                    "detail": dead.rejection.detail,
                },
            )
        self.stats.record_commit(
            batch, messages=messages, seconds=seconds, now_ms=self._clock.now_ms()
        )

    async def _commit_and_ack(
        self,
        client: aiomqtt.Client,
        messages: list[aiomqtt.Message],
        batch: Batch,
        stop: asyncio.Event,
    ) -> bool:
        if not await self._commit(messages, batch, stop):
            return False
        for message in messages:
            if message.qos > 0:
                _paho(client).ack(message.mid, message.qos)
        return True

    async def _commit(
        self, messages: list[aiomqtt.Message], batch: Batch, stop: asyncio.Event
    ) -> bool:
        """Commit, retrying with backoff while the store is down. False: gave up at stop (the
        messages stay unacknowledged and the broker redelivers them).

        If the database refuses the batch's data (something validation let through), the
        messages are committed one by one and only the refused ones are dead-lettered as
        ``unstorable``: one bad message must not stop the fleet's ingest."""
        try:
            return await self._write_retrying(batch, len(messages), stop)
        except StoreDataError as exc:
            log.error("ingest: %s; committing its %d messages one by one", exc, len(messages))
        for message in messages:
            received = _received(message)
            builder = self._builder()
            builder.add(received)
            try:
                if not await self._write_retrying(builder.finish(), 1, stop):
                    return False
            except StoreDataError as exc:
                if not await self._write_retrying(_unstorable(received, exc), 1, stop):
                    return False
        return True

    async def _write_retrying(self, batch: Batch, messages: int, stop: asyncio.Event) -> bool:
        backoff_s = 0.1
        max_backoff_s = self._settings.retry_max_backoff_ms / 1000
        while True:
            started = time.perf_counter()
            try:
                await self._store.write(batch)
            except StoreUnavailableError as exc:
                self.stats.commit_failures += 1
                log.warning("ingest: %s; retrying in %.1f s", exc, backoff_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff_s)
                if stop.is_set():
                    return False
                backoff_s = min(backoff_s * 2, max_backoff_s)
                continue
            self._account(batch, messages, time.perf_counter() - started)
            self._hand_off(batch)
            return True

    def _hand_off(self, batch: Batch) -> None:
        if self._on_commit is None:
            return
        try:
            self._on_commit(batch)
        except Exception:
            # The data is committed; a failing consumer downstream must not make ingest retry.
            log.exception("ingest: the committed-batch hand-off failed")

    async def _ensure_partitions_with_retry(
        self, from_ms: int, to_ms: int, stop: asyncio.Event
    ) -> None:
        backoff_s = 0.2
        while not stop.is_set():
            try:
                await self._store.ensure_partitions(from_ms, to_ms)
                return
            except StoreUnavailableError as exc:
                log.warning("ingest: cannot prepare partitions (%s); retrying", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff_s)
            backoff_s = min(backoff_s * 2, 5.0)
