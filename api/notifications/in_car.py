"""The in-car channel: a ``notify`` command, QoS 1, on ``v1/vehicles/{VIN}/commands``, over one
MQTT connection this adapter owns (a service identity with the ``commander`` role).

The message is the shared wire model, :class:`protocol.messages.CommandMessage` (docs/protocol.md
section 5.5): ``{"id": "notify-<delivery id>", "type": "notify", "ts": ..., "payload": {"title",
"body", "category", "notification_id"}}``. The id is stable per delivery, so a resend after a
lost PUBACK is recognisable by the car as the same command. ``send`` returns once the broker has
acknowledged the publish (PUBACK): the delivery is then ``sent``. The contract has no
acknowledgement from the car yet, so FleetLink cannot tell ``delivered`` for this channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl

import aiomqtt

from api.notifications.adapters import OutgoingMessage
from api.notifications.errors import DeliveryError
from api.notifications.model import Channel
from protocol.endpoint import MqttEndpoint
from protocol.messages import CommandMessage, CommandType, encode
from protocol.topics import commands_topic

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0


def command_id(delivery_id: int) -> str:
    return f"notify-{delivery_id}"


def notify_command(message: OutgoingMessage) -> CommandMessage:
    return CommandMessage(
        id=command_id(message.delivery_id),
        type=CommandType.NOTIFY,
        ts=int(message.issued_at.timestamp() * 1000),
        payload={
            "title": message.title,
            "body": message.body,
            "category": message.category.value,
            "notification_id": message.notification_id,
        },
    )


class InCarAdapter:
    channel = Channel.IN_CAR

    def __init__(self, endpoint: MqttEndpoint, *, publish_timeout_s: float) -> None:
        self._endpoint = endpoint
        self._publish_timeout_s = publish_timeout_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()  # one connect at a time; publishes share the connection

    def _new_client(self) -> aiomqtt.Client:
        e = self._endpoint
        # A unique client id per process: replicas must not take over each other's session.
        identifier = f"{e.username or 'notifier'}-{secrets.token_hex(4)}"
        return aiomqtt.Client(
            e.host,
            e.port,
            identifier=identifier,
            username=e.username,
            password=e.password,
            tls_context=ssl.create_default_context() if e.tls else None,
            clean_session=True,  # publishes only: nothing to keep for us while away
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
                    raise DeliveryError("mqtt_unavailable", f"MQTT connect: {exc}") from exc
                self._client = client
            return self._client

    async def send(self, message: OutgoingMessage) -> None:
        if not message.vin:
            raise DeliveryError("no_vehicle", "in-car delivery without a vehicle", permanent=True)
        payload = encode(notify_command(message))
        client = await self._connected()
        try:
            await client.publish(
                commands_topic(message.vin), payload, qos=1, timeout=self._publish_timeout_s
            )
        except aiomqtt.MqttError as exc:
            await self._drop(client)  # reconnect on the next send
            raise DeliveryError("mqtt_publish_failed", f"MQTT publish: {exc}") from exc

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
