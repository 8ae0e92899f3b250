"""Publishing commands to cars: one MQTT connection with a ``commander`` service identity
(broker.policy: it may publish to every car's ``commands`` topic and nothing else), QoS 1,
returning once the broker acknowledged (PUBACK). aiomqtt errors become
:class:`EntitlementPushError` here, once."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
from typing import Protocol

import aiomqtt

from ota.entitlements.errors import EntitlementPushError
from protocol.endpoint import MqttEndpoint
from protocol.messages import CommandMessage, encode
from protocol.topics import commands_topic

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0


class CommandPublisher(Protocol):
    async def publish(self, vin: str, command: CommandMessage) -> None: ...

    async def aclose(self) -> None: ...


class MqttCommandPublisher:
    def __init__(self, endpoint: MqttEndpoint, *, publish_timeout_s: float) -> None:
        self._endpoint = endpoint
        self._publish_timeout_s = publish_timeout_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()  # one connect at a time; publishes share the connection

    def _new_client(self) -> aiomqtt.Client:
        e = self._endpoint
        # A client id of its own per process: replicas must not take over each other's session.
        identifier = f"{e.username or 'entitlements'}-{secrets.token_hex(4)}"
        return aiomqtt.Client(
            e.host,
            e.port,
            identifier=identifier,
            username=e.username,
            password=e.password,
            tls_context=ssl.create_default_context() if e.tls else None,
            clean_session=True,  # it only publishes: nothing to keep while away
            keepalive=KEEPALIVE_S,
            timeout=CONNECT_TIMEOUT_S,
        )

    async def _connected(self) -> aiomqtt.Client:
        async with self._lock:
            if self._client is None:
                client = self._new_client()
                try:
                    await client.__aenter__()
                except aiomqtt.MqttError as exc:
                    raise EntitlementPushError(f"MQTT connect: {exc}") from exc
                self._client = client
            return self._client

    async def publish(self, vin: str, command: CommandMessage) -> None:
        client = await self._connected()
        try:
            await client.publish(
                commands_topic(vin), encode(command), qos=1, timeout=self._publish_timeout_s
            )
        except aiomqtt.MqttError as exc:
            await self._drop(client)  # reconnect on the next publish
            raise EntitlementPushError(f"MQTT publish: {exc}") from exc

    async def _drop(self, client: aiomqtt.Client) -> None:
        async with self._lock:
            if self._client is client:
                self._client = None
        with contextlib.suppress(Exception):
            await client.__aexit__(None, None, None)

    async def aclose(self) -> None:
        client = self._client
        if client is not None:
            await self._drop(client)
