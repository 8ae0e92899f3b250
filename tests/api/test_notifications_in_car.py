"""In-car delivery through a real MQTT broker (FleetLink's embedded amqtt with its policy): the
notifier's service identity (role ``commander``) publishes a ``notify`` command, QoS 1, that the
car receives on its own ``v1/vehicles/{VIN}/commands``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Protocol

import aiomqtt
import asyncpg
import pytest

from api.notifications.delivery import DeliveryLoop, adapters_from
from api.notifications.in_car import command_id
from api.notifications.settings import NotifySettings
from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker
from broker.policy import Identity, ServiceIdentity, ServiceRole
from fleetlink.embedded_postgres import free_port
from protocol.endpoint import MqttEndpoint
from protocol.messages import CommandMessage, CommandType
from protocol.topics import commands_topic
from tests.api.customer_platform import VIN_A, VIN_B, FakeClock, Platform, running_platform
from tests.api.test_notifications_helpers import (
    alert_payload,
    consumer,
    deliveries_of,
    emit,
    later,
    notifications_of,
    owner,
)

pytestmark = pytest.mark.integration

NOTIFIER = "svc-notifier"
NOTIFIER_SECRET = "notifier-test-secret"
RECEIVE_TIMEOUT_S = 5.0


class CarAccounts(Protocol):
    """The ``test_vehicles`` fixture of tests/conftest.py: VIN -> password, and a verifier."""

    passwords: dict[str, str]

    async def verify(self, username: str, password: str) -> Identity | None: ...


@pytest.fixture
async def broker(test_vehicles: CarAccounts) -> AsyncIterator[MqttEndpoint]:
    """The embedded broker with the notifier's commander account and the test cars."""
    commander = ServiceIdentity(NOTIFIER, frozenset({ServiceRole.COMMANDER}))
    services = ServiceAccounts({NOTIFIER: (NOTIFIER_SECRET, commander)})
    port = free_port()
    running = EmbeddedBroker(FirstMatch([services, test_vehicles]), port=port)
    await running.start()
    try:
        yield MqttEndpoint("127.0.0.1", port, username=NOTIFIER, password=NOTIFIER_SECRET)
    finally:
        await running.stop()


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


def car(endpoint: MqttEndpoint, vehicles: CarAccounts, vin: str) -> aiomqtt.Client:
    """The car's own connection: VIN as client id and user, a persistent session."""
    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        identifier=vin,
        username=vin,
        password=vehicles.passwords[vin],
        clean_session=False,
        timeout=5,
    )


async def next_command(client: aiomqtt.Client) -> tuple[str, CommandMessage]:
    async with asyncio.timeout(RECEIVE_TIMEOUT_S):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            return str(message.topic), CommandMessage.model_validate_json(message.payload)
    raise AssertionError("the subscription ended")


def delivery_loop(platform: Platform, endpoint: MqttEndpoint, clock: FakeClock) -> DeliveryLoop:
    settings = NotifySettings(mqtt_publish_timeout_s=5, retry_base_s=30)
    return DeliveryLoop(
        platform.pool, adapters_from(settings, mqtt=endpoint), settings=settings, clock=clock
    )


async def test_the_car_receives_a_notify_command(
    platform: Platform, broker: MqttEndpoint, test_vehicles: CarAccounts
) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A, preferred_channels=["app", "in_car"])
    outbox, _ = consumer(platform.pool, platform.clock)
    await emit(
        platform.pool,
        "alert.opened",
        "alert:7",
        alert_payload(7, VIN_A),
        occurred_at=later(platform.clock),
    )
    await outbox.process_pending()
    [notification] = await notifications_of(platform.pool, ada.id)
    loop = delivery_loop(platform, broker, platform.clock)
    async with car(broker, test_vehicles, VIN_A) as client:
        await client.subscribe(commands_topic(VIN_A), qos=1)
        try:
            assert await loop.deliver_due() == 1
            topic, command = await next_command(client)
        finally:
            await loop.aclose()
    deliveries = await deliveries_of(platform.pool, notification["id"])
    in_car = deliveries["in_car"]
    assert topic == commands_topic(VIN_A)
    assert command.type is CommandType.NOTIFY
    assert command.id == command_id(in_car["id"])
    assert command.ts == platform.clock.now_ms()
    assert command.payload == {
        "title": "Brake pads wearing out (front left)",
        "body": notification["body"],
        "category": "informational",
        "notification_id": notification["id"],
    }
    # Accepted by the broker (PUBACK); the contract has no acknowledgement from the car yet.
    assert (in_car["state"], in_car["attempts"]) == ("sent", 1)


async def test_a_command_waits_in_the_broker_for_an_offline_car(
    platform: Platform, broker: MqttEndpoint, test_vehicles: CarAccounts
) -> None:
    await owner(platform, "ada@example.com", VIN_A, preferred_channels=["in_car"])
    async with car(broker, test_vehicles, VIN_A) as client:
        await client.subscribe(commands_topic(VIN_A), qos=1)
    # The car is in a tunnel; its session (and subscription) stays with the broker.
    outbox, _ = consumer(platform.pool, platform.clock)
    await emit(
        platform.pool,
        "alert.opened",
        "alert:7",
        alert_payload(7, VIN_A),
        occurred_at=later(platform.clock),
    )
    await outbox.process_pending()
    loop = delivery_loop(platform, broker, platform.clock)
    try:
        assert await loop.deliver_due() == 1
    finally:
        await loop.aclose()
    async with car(broker, test_vehicles, VIN_A) as client:
        _, command = await next_command(client)
    assert command.payload["title"] == "Brake pads wearing out (front left)"


async def test_at_night_only_the_safety_message_reaches_the_car(
    platform: Platform, broker: MqttEndpoint, test_vehicles: CarAccounts
) -> None:
    await owner(
        platform,
        "ada@example.com",
        VIN_A,
        preferred_channels=["app", "in_car"],
        timezone="Europe/Berlin",
        quiet_hours={"start": "22:00", "end": "07:00"},
    )
    night = FakeClock(int(datetime(2026, 11, 24, 1, 0, tzinfo=UTC).timestamp() * 1000))
    outbox, _ = consumer(platform.pool, night)
    at = later(platform.clock)
    await emit(platform.pool, "alert.opened", "alert:7", alert_payload(7, VIN_A), occurred_at=at)
    puncture = alert_payload(
        8, VIN_A, type="tire_pressure_loss", severity="critical", predicted_failure_at=None
    )
    await emit(platform.pool, "alert.opened", "alert:8", puncture, occurred_at=at)
    await outbox.process_pending()
    loop = delivery_loop(platform, broker, night)
    async with car(broker, test_vehicles, VIN_A) as client:
        await client.subscribe(commands_topic(VIN_A), qos=1)
        try:
            assert await loop.deliver_due() == 1
            _, command = await next_command(client)
            assert command.payload["category"] == "service_critical"
            assert command.payload["title"] == "Urgent: Tyre pressure loss (front left)"
            with pytest.raises(TimeoutError):
                await next_command(client)  # the informational one waits for the morning
        finally:
            await loop.aclose()


async def test_the_running_loop_delivers_as_soon_as_the_notifier_commits(
    platform: Platform, broker: MqttEndpoint, test_vehicles: CarAccounts
) -> None:
    await owner(platform, "ada@example.com", VIN_A, preferred_channels=["in_car"])
    await owner(platform, "bob@example.com", VIN_B, preferred_channels=["in_car"])
    settings = NotifySettings(poll_interval_s=30)  # only the NOTIFY can be this quick
    loop = DeliveryLoop(
        platform.pool, adapters_from(settings, mqtt=broker), settings=settings, clock=platform.clock
    )
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run(stop))
    try:
        await asyncio.wait_for(loop.listening.wait(), 5)
        async with car(broker, test_vehicles, VIN_B) as client:
            await client.subscribe(commands_topic(VIN_B), qos=1)
            outbox, _ = consumer(platform.pool, platform.clock)
            await emit(
                platform.pool,
                "alert.opened",
                "alert:9",
                alert_payload(9, VIN_B),
                occurred_at=later(platform.clock),
            )
            await outbox.process_pending()
            started = asyncio.get_running_loop().time()
            topic, _ = await next_command(client)
            assert asyncio.get_running_loop().time() - started < 2.0
        assert topic == commands_topic(VIN_B)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


async def test_an_unreachable_broker_is_retried(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A, preferred_channels=["in_car"])
    outbox, _ = consumer(platform.pool, platform.clock)
    await emit(
        platform.pool,
        "alert.opened",
        "alert:7",
        alert_payload(7, VIN_A),
        occurred_at=later(platform.clock),
    )
    await outbox.process_pending()
    nowhere = MqttEndpoint("127.0.0.1", free_port(), username=NOTIFIER, password="x")
    loop = delivery_loop(platform, nowhere, platform.clock)
    try:
        await loop.deliver_due()
    finally:
        await loop.aclose()
    [notification] = await notifications_of(platform.pool, ada.id)
    waiting = (await deliveries_of(platform.pool, notification["id"]))["in_car"]
    assert (waiting["state"], waiting["attempts"]) == ("queued", 1)
    assert waiting["last_error"].startswith("mqtt_unavailable")
