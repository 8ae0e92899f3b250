"""One simulated car on the wire: its own MQTT connection and credentials, QoS 1, ``seq``,
retained presence with a last will, and store-and-forward while offline.

Sampling is not done here: the fleet runner steps every car's physics once per tick and hands
each car its sample (``offer``); this class only buffers and publishes, so a car that is offline
keeps recording and delivers its backlog when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from dataclasses import dataclass

import aiomqtt

from protocol.clock import Clock
from protocol.endpoint import MqttEndpoint
from protocol.messages import (
    PresenceMessage,
    PresenceState,
    Sample,
    SignalValue,
    TelemetryMessage,
    encode,
)
from protocol.topics import presence_topic, telemetry_topic
from protocol.vin import Vin

log = logging.getLogger(__name__)

DEFAULT_PUBLISH_INTERVAL_S = 5.0
DEFAULT_BUFFER_MAX_SAMPLES = 24 * 3600  # a day at 1 Hz
MAX_SAMPLES_PER_PUBLISH = 600
# Below ingest's default limit (256 KiB, docs/protocol.md) with room for the envelope.
DEFAULT_MAX_PAYLOAD_BYTES = 200_000
_ENVELOPE_BYTES = len('{"seq":9223372036854775807,"samples":[]}')
PUBLISH_TIMEOUT_S = 30.0


@dataclass
class CarCounters:
    published_messages: int = 0
    published_samples: int = 0
    dropped_samples: int = 0  # buffer full: the oldest samples go first
    connects: int = 0


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
        rng: random.Random | None = None,
        last_seq: int | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self.vin = vin
        self._max_payload_bytes = max_payload_bytes
        self._password = password
        self._endpoint = endpoint
        self._clock = clock
        self._publish_interval_s = publish_interval_s
        self._buffer: deque[Sample] = deque()
        self._buffer_max = buffer_max_samples
        # Samples ever removed from the buffer's head (published or dropped): lets a flush
        # tell how many of the samples it sent were meanwhile dropped by an overflow.
        self._removed = 0
        self._rng = rng or random.Random(vin)
        # A real car keeps seq in non-volatile memory; the fleet runner restores it from the
        # fleet file. Without it (first start, or after a crash), starting at the clock keeps it
        # increasing across restarts at the price of one counted gap.
        self._seq = last_seq if last_seq is not None else clock.now_ms()
        self.counters = CarCounters()
        self.connected = False

    @property
    def seq(self) -> int:
        """The last sequence number used (persist it to continue after a restart)."""
        return self._seq

    @property
    def backlog(self) -> int:
        return len(self._buffer)

    def offer(self, ts_ms: int, signals: dict[str, SignalValue]) -> None:
        if len(self._buffer) >= self._buffer_max:
            self._buffer.popleft()
            self._removed += 1
            self.counters.dropped_samples += 1
        self._buffer.append(Sample(ts=ts_ms, signals=signals))

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
            keepalive=60,
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def run(self, stop: asyncio.Event) -> None:
        backoff_s = 1.0
        # Spread the fleet's connects and publishes so they do not all land in the same tick.
        await _sleep_or_stop(stop, self._rng.uniform(0, self._publish_interval_s))
        while not stop.is_set():
            try:
                async with self._client() as client:
                    self.connected = True
                    self.counters.connects += 1
                    backoff_s = 1.0
                    await self._publish_presence(client, PresenceState.ONLINE)
                    await self._publish_loop(client, stop)
                    await self._flush(client)  # hand over what was sampled before the stop
                    await self._publish_presence(client, PresenceState.OFFLINE)
            except aiomqtt.MqttError as exc:
                log.debug("car %s: connection lost (%s)", self.vin, exc)
            finally:
                self.connected = False
            if not stop.is_set():
                # Exponential backoff with full jitter (AWS architecture blog), capped at 60 s.
                await _sleep_or_stop(stop, self._rng.uniform(0, backoff_s))
                backoff_s = min(backoff_s * 2, 60.0)

    async def _publish_presence(self, client: aiomqtt.Client, state: PresenceState) -> None:
        message = PresenceMessage(state=state, ts=self._clock.now_ms())
        await client.publish(presence_topic(self.vin), encode(message), qos=1, retain=True)

    async def _publish_loop(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._flush(client)
            await _sleep_or_stop(stop, self._publish_interval_s)

    def _next_batch(self) -> tuple[list[Sample], bytes]:
        """The oldest samples that fit one message: at most MAX_SAMPLES_PER_PUBLISH and at most
        ``max_payload_bytes`` encoded, so a long offline backlog is sent in pieces the backend
        accepts rather than one oversized message it must reject."""
        samples: list[Sample] = []
        size = _ENVELOPE_BYTES
        for sample in self._buffer:
            sample_size = len(sample.model_dump_json()) + 1  # + the separating comma
            if samples and (
                size + sample_size > self._max_payload_bytes
                or len(samples) == MAX_SAMPLES_PER_PUBLISH
            ):
                break
            samples.append(sample)
            size += sample_size
        self._seq += 1
        return samples, encode(TelemetryMessage(seq=self._seq, samples=samples))

    async def _flush(self, client: aiomqtt.Client) -> None:
        while self._buffer:
            samples, payload = self._next_batch()
            count = len(samples)
            removed_before = self._removed
            await client.publish(telemetry_topic(self.vin), payload, qos=1)
            # Only a PUBACK'd message leaves the buffer: store-and-forward loses nothing.
            for _ in range(max(count - (self._removed - removed_before), 0)):
                self._buffer.popleft()
                self._removed += 1
            self.counters.published_messages += 1
            self.counters.published_samples += count


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(seconds, 0.0))
