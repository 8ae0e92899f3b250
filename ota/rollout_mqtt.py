"""The OTA service's MQTT connection: it publishes ``ota.offer`` commands (QoS 1) and receives
the cars' ``ota/status`` reports, as a service identity with the ``commander`` role (publish
``commands``) and the right to subscribe to ``ota/status``.

Reports are acknowledged on receipt, not after commit as ingest does (ADR 0002): a broker
gives a subscriber a bounded time to acknowledge (amqtt: 5 s, then the message is dropped),
which a burst of hundreds of reports queued behind each other's transactions would exceed. A
report lost to a crash is not lost information: every report carries the car's full installed
state, and an update that makes no progress is offered again (``resend_after_s``), upon which
the car reports where it stands. Reports are handled by ``status_workers`` tasks, each VIN
always by the same one, so a car's reports apply in the order it sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from typing import Protocol

import aiomqtt
import asyncpg

from ota.rollout_settings import RolloutSettings
from ota.status_ingest import StatusIngest
from protocol.clock import Clock, utc_from_ms
from protocol.endpoint import MqttEndpoint
from protocol.errors import ProtocolError
from protocol.messages import CommandMessage, encode
from protocol.topics import TopicKind, commands_topic, fleet_subscription, parse_vehicle_topic

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0
RECONNECT_MAX_S = 30.0


class CommandNotSentError(Exception):
    """The broker is not reachable right now; the scheduler tries again later."""


class CommandSink(Protocol):
    async def send(self, vin: str, command: CommandMessage) -> None: ...


class MqttRolloutLink:
    def __init__(
        self,
        endpoint: MqttEndpoint,
        ingest: StatusIngest,
        clock: Clock,
        settings: RolloutSettings,
    ) -> None:
        self._endpoint = endpoint
        self._ingest = ingest
        self._clock = clock
        self._settings = settings
        self._client: aiomqtt.Client | None = None
        self.subscribed = asyncio.Event()
        self.handled = 0

    async def send(self, vin: str, command: CommandMessage) -> None:
        client = self._client
        if client is None:
            raise CommandNotSentError("not connected to the broker")
        try:
            await client.publish(commands_topic(vin), encode(command), qos=1)
        except aiomqtt.MqttError as exc:
            raise CommandNotSentError(str(exc)) from exc

    def _new_client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self._endpoint.host,
            self._endpoint.port,
            identifier=self._settings.mqtt_client_id,
            username=self._endpoint.username,
            password=self._endpoint.password,
            # A persistent session: reports sent while the service is away wait for it.
            clean_session=False,
            keepalive=KEEPALIVE_S,
            timeout=CONNECT_TIMEOUT_S,
        )
        return client

    async def run(self, stop: asyncio.Event) -> None:
        backoff_s = 1.0
        while not stop.is_set():
            try:
                async with self._new_client() as client:
                    self._client = client
                    backoff_s = 1.0
                    await self._consume(client, stop)
            except aiomqtt.MqttError as exc:
                log.warning("OTA: broker connection lost (%s); reconnecting", exc)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("OTA: a status report could not be stored (%s); reconnecting", exc)
            finally:
                self._client = None
                self.subscribed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff_s)
            backoff_s = min(backoff_s * 2, RECONNECT_MAX_S)

    async def _consume(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        s = self._settings
        await client.subscribe(
            fleet_subscription(TopicKind.OTA_STATUS, share_group=s.share_group), qos=1
        )
        self.subscribed.set()
        queues: list[asyncio.Queue[aiomqtt.Message]] = [
            asyncio.Queue(maxsize=s.status_queue) for _ in range(s.status_workers)
        ]
        workers = [asyncio.create_task(self._work(q)) for q in queues]
        reader = asyncio.create_task(self._read(client, queues))
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait(
                [reader, stopping, *workers], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stopping:
                    task.result()  # a broker error ends this connection; reconnect
        finally:
            for task in (reader, stopping, *workers):
                task.cancel()
            await asyncio.gather(reader, stopping, *workers, return_exceptions=True)

    async def _read(
        self, client: aiomqtt.Client, queues: list[asyncio.Queue[aiomqtt.Message]]
    ) -> None:
        async for message in client.messages:
            topic = message.topic.value
            # Full queue: wait (the broker holds the rest; bounded memory, convention 10).
            await queues[zlib.crc32(topic.encode()) % len(queues)].put(message)

    async def _work(self, queue: asyncio.Queue[aiomqtt.Message]) -> None:
        while True:
            await self._handle(await queue.get())

    async def _handle(self, message: aiomqtt.Message) -> None:
        try:
            vin = str(parse_vehicle_topic(message.topic.value).vin)
        except ProtocolError:
            log.warning("OTA: report on unexpected topic %s", message.topic.value[:200])
            return
        payload = message.payload if isinstance(message.payload, bytes) else b""
        now = utc_from_ms(self._clock.now_ms())
        await self._ingest.handle(vin, payload, now)
        self.handled += 1
