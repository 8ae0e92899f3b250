"""One simulated car on the wire: its own MQTT connection and credentials, QoS 1, ``seq``,
retained presence with a last will, store-and-forward while offline, events, and reconnects with
backoff and jitter.

Sampling is not done here: the fleet runner steps every car's physics and hands each car its
samples (:meth:`CarLink.offer`) and events (:meth:`CarLink.offer_event`); this class only buffers
and publishes, so a car that is offline keeps recording and delivers its backlog when it is back.

Memory per car is what a telematics unit has: the backlog is bounded by count and by bytes, and
when it is full the oldest samples are dropped and counted. Each sample is encoded once, when
it is recorded; a message is the encoded samples joined, so a backlog of 2,000 cars is bytes,
not dicts of floats, and flushing it encodes nothing twice.

The radio (:meth:`CarLink.set_radio`) models coverage: when it goes down the connection is cut
without a DISCONNECT (the broker publishes the last will, as for a real car in a tunnel) and the
car does not try to reconnect until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiomqtt

from protocol.aio import first_of
from protocol.clock import Clock
from protocol.endpoint import MqttEndpoint
from protocol.messages import (
    EventMessage,
    PresenceMessage,
    PresenceState,
    Sample,
    SignalValue,
    encode,
)
from protocol.topics import (
    commands_topic,
    events_topic,
    ota_status_topic,
    presence_topic,
    telemetry_topic,
)
from protocol.vin import Vin
from simulator.commands import EventValue
from simulator.pacing import Backoff, ConnectPacer

log = logging.getLogger(__name__)

DEFAULT_PUBLISH_INTERVAL_S = 5.0
DEFAULT_BUFFER_MAX_SAMPLES = 24 * 3600  # a day at 1 Hz
#: A telematics unit's store-and-forward memory: about 1.5 hours of 1 Hz samples (~2 KB each).
DEFAULT_BUFFER_MAX_BYTES = 12 * 1024 * 1024
MAX_SAMPLES_PER_PUBLISH = 600
#: A car publishes as soon as this many samples wait, even before its publish interval is up
#: (a backfill or a car back from a tunnel sends its backlog without idling).
DEFAULT_BATCH_SAMPLES = 40
# Below ingest's default limit (256 KiB, docs/protocol.md) with room for the envelope.
DEFAULT_MAX_PAYLOAD_BYTES = 200_000
_ENVELOPE_BYTES = len('{"seq":9223372036854775807,"samples":[]}')
PUBLISH_TIMEOUT_S = 30.0
EVENT_BUFFER_MAX = 1000
KEEPALIVE_S = 60
#: How long a cut connection may take to notice it is gone before the car moves on.
_CUT_WAIT_S = 5.0

#: The seam for the car's command handling (``simulator.commands.CommandDispatcher``): called
#: with each raw payload received on ``v1/vehicles/{VIN}/commands``. Without one, the car does
#: not subscribe.
CommandHandler = Callable[[bytes], Awaitable[None]]


class NotConnectedError(Exception):
    """A message that goes out at once, not through the store-and-forward buffer, found the
    car without a connection."""


@dataclass
class CarCounters:
    published_messages: int = 0  # telemetry messages acknowledged by the broker (PUBACK)
    published_samples: int = 0
    published_events: int = 0
    dropped_samples: int = 0  # buffer full: the oldest samples go first
    dropped_events: int = 0
    connects: int = 0
    connection_losses: int = 0  # connections that ended other than by our stop
    connect_failures: int = 0


@dataclass(slots=True)
class _PendingEvent:
    ts_ms: int
    type: str
    code: str | None
    active: bool | None
    # Fields beyond the contract's (kept by ingest in the event's body).
    fields: Mapping[str, EventValue] | None = None
    # Given at the first publish attempt and kept: a resend after a lost PUBACK must carry the
    # same seq, which is what ingest deduplicates events on.
    seq: int | None = None

    def message(self) -> EventMessage:
        assert self.seq is not None
        if not self.fields:
            return EventMessage(
                seq=self.seq, ts=self.ts_ms, type=self.type, code=self.code, active=self.active
            )
        # The contract's fields win over extras of the same name.
        named = {"seq": self.seq, "ts": self.ts_ms, "type": self.type}
        named |= {"code": self.code, "active": self.active}
        return EventMessage.model_validate({**self.fields, **named})


def encode_sample(ts_ms: int, signals: dict[str, SignalValue]) -> bytes:
    """The wire form of one sample, as it appears inside a telemetry message."""
    return encode(Sample(ts=ts_ms, signals=signals))


def telemetry_payload(seq: int, samples: list[bytes]) -> bytes:
    """A telemetry message from encoded samples: byte for byte what ``encode`` gives for
    ``TelemetryMessage(seq=seq, samples=...)``, without decoding and re-encoding them."""
    return b'{"seq":%d,"samples":[%b]}' % (seq, b",".join(samples))


class CarLink:
    def __init__(
        self,
        vin: Vin,
        password: str,
        endpoint: MqttEndpoint,
        clock: Clock,
        *,
        publish_interval_s: float = DEFAULT_PUBLISH_INTERVAL_S,
        buffer_max_samples: int = DEFAULT_BUFFER_MAX_SAMPLES,
        buffer_max_bytes: int = DEFAULT_BUFFER_MAX_BYTES,
        batch_samples: int = DEFAULT_BATCH_SAMPLES,
        rng: random.Random | None = None,
        last_seq: int | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        pacer: ConnectPacer | None = None,
        backoff: Backoff | None = None,
        on_command: CommandHandler | None = None,
    ) -> None:
        self.vin = vin
        self._max_payload_bytes = max_payload_bytes
        self._password = password
        self._endpoint = endpoint
        self._clock = clock
        self._publish_interval_s = publish_interval_s
        self._buffer: deque[bytes] = deque()
        self._buffer_bytes = 0
        self._buffer_max = buffer_max_samples
        self._buffer_max_bytes = buffer_max_bytes
        self._batch_samples = batch_samples
        self._events: deque[_PendingEvent] = deque()
        # Samples ever removed from the buffer's head (published or dropped): lets a flush
        # tell how many of the samples it sent were meanwhile dropped by an overflow.
        self._removed = 0
        self._rng = rng or random.Random(vin)
        self._pacer = pacer
        self._backoff = backoff or Backoff(self._rng)
        self._on_command = on_command
        # A real car keeps seq in non-volatile memory; the fleet runner restores it from the
        # fleet file. Without it (first start, or after a crash), starting at the clock keeps it
        # increasing across restarts at the price of one counted gap.
        self._seq = last_seq if last_seq is not None else clock.now_ms()
        self.counters = CarCounters()
        self.connected = False
        self.receiving_commands = False  # subscribed to its commands topic on this connection
        self._radio = True
        self._wake = asyncio.Event()  # new samples, radio change or stop: look again
        self._live: aiomqtt.Client | None = None  # the connection, while there is one
        self._online = asyncio.Event()

    @property
    def seq(self) -> int:
        """The last sequence number used (persist it to continue after a restart)."""
        return self._seq

    @property
    def backlog(self) -> int:
        return len(self._buffer)

    @property
    def backlog_bytes(self) -> int:
        return self._buffer_bytes

    @property
    def radio(self) -> bool:
        return self._radio

    def handle_commands(self, handler: CommandHandler) -> None:
        """Receive commands with ``handler`` (subscribing from the next connection on)."""
        self._on_command = handler

    def set_radio(self, up: bool) -> None:
        """Coverage came or went (see :mod:`simulator.connectivity`)."""
        if up != self._radio:
            self._radio = up
            self._wake.set()

    def offer(self, ts_ms: int, signals: dict[str, SignalValue]) -> None:
        self.offer_encoded(encode_sample(ts_ms, signals))

    def offer_encoded(self, sample: bytes) -> None:
        """Record one encoded sample (see :func:`encode_sample`)."""
        buffer = self._buffer
        while buffer and (
            len(buffer) >= self._buffer_max
            or self._buffer_bytes + len(sample) > self._buffer_max_bytes
        ):
            self._buffer_bytes -= len(buffer.popleft())
            self._removed += 1
            self.counters.dropped_samples += 1
        buffer.append(sample)
        self._buffer_bytes += len(sample)
        if len(buffer) >= self._batch_samples:
            self._wake.set()

    def offer_event(
        self,
        ts_ms: int,
        event_type: str,
        *,
        code: str | None = None,
        active: bool | None = None,
        fields: Mapping[str, EventValue] | None = None,
    ) -> None:
        """Record a discrete event (trip start/end, charging, DTC set/clear, a command's
        acknowledgement) to publish; ``fields`` are extra fields of the message."""
        if len(self._events) >= EVENT_BUFFER_MAX:
            self._events.popleft()
            self.counters.dropped_events += 1
        extra = dict(fields) if fields else None
        self._events.append(_PendingEvent(ts_ms, event_type, code, active, extra))
        self._wake.set()

    async def publish_ota_status(
        self, payload: bytes, *, timeout_s: float = PUBLISH_TIMEOUT_S
    ) -> None:
        """An OTA version report on ``.../ota/status`` (QoS 1), returning once the broker has
        acknowledged it. Not buffered: a report carries a fresh nonce the director checks, so
        a stale one is worth nothing; the OTA client reports again instead. Waits up to
        ``timeout_s`` for a connection, then raises :class:`NotConnectedError`."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._online.wait()
                client = self._live  # set and cleared together with _online
                assert client is not None
                await client.publish(ota_status_topic(self.vin), payload, qos=1)
        except TimeoutError as exc:
            raise NotConnectedError(f"{self.vin}: offline for {timeout_s:.0f} s") from exc
        except aiomqtt.MqttError as exc:
            raise NotConnectedError(f"{self.vin}: {exc}") from exc

    def _client(self) -> aiomqtt.Client:
        will = aiomqtt.Will(
            presence_topic(self.vin),
            encode(PresenceMessage(state=PresenceState.OFFLINE)),
            qos=1,
            retain=True,
        )
        return aiomqtt.Client(
            self._endpoint.host,
            self._endpoint.port,
            identifier=self.vin,
            username=self.vin,
            password=self._password,
            will=will,
            clean_session=False,
            keepalive=KEEPALIVE_S,
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def run(self, stop: asyncio.Event, *, flush_timeout_s: float = 15.0) -> None:
        """Connect, publish, reconnect, until ``stop``; then hand over what was sampled within
        ``flush_timeout_s`` and leave."""
        # Spread the fleet's publishes so they do not all land in the same tick.
        await self._sleep(stop, self._rng.uniform(0, self._publish_interval_s))
        while not stop.is_set():
            if not self._radio:
                await self._wait_radio(stop)
                continue
            if self._pacer is not None:
                await self._pacer.wait()
            await self._connection(stop, flush_timeout_s)
            if not stop.is_set() and self._radio:
                await self._sleep(stop, self._backoff.next_delay_s())

    async def _connection(self, stop: asyncio.Event, flush_timeout_s: float) -> None:
        connected = False
        try:
            async with self._client() as client:
                connected = self.connected = True
                self.counters.connects += 1
                self._backoff.reset()
                await self._publish_presence(client, PresenceState.ONLINE)
                self._live = client
                self._online.set()
                listener = await self._listen_for_commands(client)
                try:
                    if await self._publish_loop(client, stop):
                        await self._cut(client)
                        return
                    # Hand over what was sampled before the stop, within a bounded time.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(flush_timeout_s):
                            await self._flush(client, drain=True)
                    await self._publish_presence(client, PresenceState.OFFLINE)
                finally:
                    if listener is not None:
                        listener.cancel()
        except aiomqtt.MqttError as exc:
            if connected:
                self.counters.connection_losses += 1
            else:
                self.counters.connect_failures += 1
            log.debug("car %s: connection lost (%s)", self.vin, exc)
        finally:
            self.connected = self.receiving_commands = False
            self._live = None
            self._online.clear()

    async def _cut(self, client: aiomqtt.Client) -> None:
        """Lose the connection the way a car in a tunnel does: no DISCONNECT, so the broker
        publishes the last will (MQTT 3.1.1 section 3.1.2.5)."""
        self.counters.connection_losses += 1
        paho = client._client  # aiomqtt has no public "drop the socket"
        sock = paho.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # Let paho notice the dead socket, so leaving the context sends nothing.
        disconnected = client._disconnected
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(disconnected), _CUT_WAIT_S)

    async def _listen_for_commands(self, client: aiomqtt.Client) -> asyncio.Task[None] | None:
        handler = self._on_command
        if handler is None:
            return None
        topic = commands_topic(self.vin)
        await client.subscribe(topic, qos=1)
        self.receiving_commands = True

        async def listen() -> None:
            async for message in client.messages:
                # Only the commands topic: a broker may hand a reconnecting session other
                # messages (amqtt delivers the car's own retained will to it).
                if message.topic.value != topic:
                    continue
                try:
                    if isinstance(message.payload, bytes):
                        await handler(message.payload)
                except Exception:  # one bad command must not end the car's command reception
                    log.exception("car %s: command handler failed", self.vin)

        return asyncio.create_task(listen())

    async def _publish_presence(self, client: aiomqtt.Client, state: PresenceState) -> None:
        message = PresenceMessage(state=state, ts=self._clock.now_ms())
        await client.publish(presence_topic(self.vin), encode(message), qos=1, retain=True)

    async def _publish_loop(self, client: aiomqtt.Client, stop: asyncio.Event) -> bool:
        """Publish until stop (returns False) or the radio goes down (returns True)."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._radio:
                return True
            if stop.is_set():
                return False
            deadline = loop.time() + self._publish_interval_s
            await self._flush(client)
            # Sleep until the interval is up, unless a batch fills, the radio drops or we stop.
            while not stop.is_set() and self._radio and len(self._buffer) < self._batch_samples:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wait_wake_or(stop), remaining)

    async def _wait_wake_or(self, stop: asyncio.Event) -> None:
        if stop.is_set():
            return
        await first_of(stop.wait(), self._wake.wait())

    def _next_batch(self) -> tuple[list[bytes], bytes]:
        """The oldest samples that fit one message: at most MAX_SAMPLES_PER_PUBLISH and at most
        ``max_payload_bytes`` encoded, so a long offline backlog is sent in pieces the backend
        accepts rather than one oversized message it must reject."""
        samples: list[bytes] = []
        size = _ENVELOPE_BYTES
        for sample in self._buffer:
            sample_size = len(sample) + 1  # + the separating comma
            if samples and (
                size + sample_size > self._max_payload_bytes
                or len(samples) == MAX_SAMPLES_PER_PUBLISH
            ):
                break
            samples.append(sample)
            size += sample_size
        self._seq += 1
        return samples, telemetry_payload(self._seq, samples)

    async def _flush(self, client: aiomqtt.Client, *, drain: bool = False) -> None:
        """Publish pending events, then the backlog, one message in flight at a time: the next
        message waits for the previous PUBACK, which is the backpressure a backfill runs on.

        Only what was waiting when the flush began is sent (unless ``drain``): when PUBACKs are
        slow, samples that arrive meanwhile would otherwise go out one message each."""
        until = self._removed + len(self._buffer)
        while self._events and self._radio:
            event = self._events[0]
            if event.seq is None:
                self._seq += 1
                event.seq = self._seq
            await client.publish(events_topic(self.vin), encode(event.message()), qos=1)
            if self._events and self._events[0] is event:
                self._events.popleft()
            self.counters.published_events += 1
        while self._buffer and self._radio and (drain or self._removed < until):
            samples, payload = self._next_batch()
            count = len(samples)
            removed_before = self._removed
            await client.publish(telemetry_topic(self.vin), payload, qos=1)
            # Only a PUBACK'd message leaves the buffer: store-and-forward loses nothing.
            for _ in range(max(count - (self._removed - removed_before), 0)):
                self._buffer_bytes -= len(self._buffer.popleft())
                self._removed += 1
            self.counters.published_messages += 1
            self.counters.published_samples += count

    async def _wait_radio(self, stop: asyncio.Event) -> None:
        while not self._radio and not stop.is_set():
            self._wake.clear()
            await self._wait_wake_or(stop)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(seconds, 0.0))
