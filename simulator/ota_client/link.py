"""A car's MQTT connection for OTA alone: it receives ``ota.offer`` commands on
``v1/vehicles/{VIN}/commands`` and publishes version reports on ``.../ota/status`` (QoS 1).

For benchmarks and tests that run many OTA clients without the rest of the simulated car; in
the fleet simulator the car's own connection carries commands (``simulator.commands``
dispatches ``ota.offer`` to :meth:`OtaClient.handle_offer`, see
:mod:`simulator.ota_client.onboard_setup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

import aiomqtt
from pydantic import ValidationError

from protocol.endpoint import MqttEndpoint
from protocol.messages import CommandMessage, CommandType
from protocol.topics import commands_topic, ota_status_topic
from simulator.commands import CommandRejectedError

log = logging.getLogger(__name__)

KEEPALIVE_S = 60
PUBLISH_TIMEOUT_S = 30.0
MAX_COMMAND_BYTES = 64 * 1024
OfferHandler = Callable[[CommandMessage], Awaitable[None]]


class StatusNotSentError(Exception):
    pass


class MqttOtaLink:
    def __init__(self, vin: str, password: str, endpoint: MqttEndpoint) -> None:
        self.vin = vin
        self._password = password
        self._endpoint = endpoint
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.commands = 0
        self.bad_commands = 0

    async def publish(self, payload: bytes) -> None:
        """A version report, once the broker acknowledged it (PUBACK)."""
        try:
            await asyncio.wait_for(self.connected.wait(), PUBLISH_TIMEOUT_S)
        except TimeoutError as exc:
            raise StatusNotSentError(f"{self.vin}: not connected") from exc
        client = self._client
        assert client is not None
        try:
            await client.publish(ota_status_topic(self.vin), payload, qos=1)
        except aiomqtt.MqttError as exc:
            raise StatusNotSentError(f"{self.vin}: {exc}") from exc

    async def run(self, stop: asyncio.Event, on_offer: OfferHandler) -> None:
        """Stay connected until ``stop``, handing each ``ota.offer`` to ``on_offer``."""
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    self._endpoint.host,
                    self._endpoint.port,
                    identifier=self.vin,  # the broker requires client id == VIN
                    username=self.vin,
                    password=self._password,
                    clean_session=False,
                    keepalive=KEEPALIVE_S,
                    timeout=PUBLISH_TIMEOUT_S,
                ) as client:
                    await client.subscribe(commands_topic(self.vin), qos=1)
                    self._client = client
                    self.connected.set()
                    listen = asyncio.create_task(self._listen(client, on_offer))
                    stopped = asyncio.create_task(stop.wait())
                    await asyncio.wait([listen, stopped], return_when=asyncio.FIRST_COMPLETED)
                    for task in (listen, stopped):
                        task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await listen
            except aiomqtt.MqttError as exc:
                log.debug("car %s: OTA link lost (%s)", self.vin, exc)
            finally:
                self.connected.clear()
                self._client = None
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def _listen(self, client: aiomqtt.Client, on_offer: OfferHandler) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes) or len(payload) > MAX_COMMAND_BYTES:
                self.bad_commands += 1
                continue
            try:
                command = CommandMessage.model_validate(json.loads(payload))
            except (ValueError, ValidationError):
                self.bad_commands += 1
                continue
            if command.type is not CommandType.OTA_OFFER:
                continue  # other commands are for other parts of the car
            self.commands += 1
            try:
                await on_offer(command)
            except CommandRejectedError as exc:
                self.bad_commands += 1
                log.warning("car %s: bad ota.offer %s: %s", self.vin, command.id, exc)
