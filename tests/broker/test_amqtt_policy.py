"""The policy enforced by the embedded amqtt broker, seen from real MQTT clients."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiomqtt
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from broker.amqtt_plugin import DenyReason
from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker
from broker.policy import ServiceIdentity, ServiceRole
from fleetlink.embedded_postgres import free_port

pytestmark = pytest.mark.integration

# The credentials of tests/conftest.py's amqtt_broker fixture.
VIN_A, VIN_B, VIN_C = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002", "WBA3A5C50CF256985"
INGEST_USER, INGEST_PASSWORD = "svc-ingest", "ingest-test-secret"
COMMANDER_USER, COMMANDER_PASSWORD = "svc-commander", "commander-test-secret"
RECEIVE_TIMEOUT_S = 5.0
SUBACK_FAILURE = 0x80


class Address(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int


def password_of(vin: str) -> str:
    return f"secret-{vin[-4:]}"


def topic(vin: str, suffix: str) -> str:
    return f"v1/vehicles/{vin}/{suffix}"


def car(
    broker: Address,
    vin: str,
    *,
    password: str | None = None,
    identifier: str | None = None,
    **options: Any,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=vin if identifier is None else identifier,
        username=vin,
        password=password_of(vin) if password is None else password,
        timeout=RECEIVE_TIMEOUT_S,
        **options,
    )


def service(broker: Address, user: str, password: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"{user}-test",
        username=user,
        password=password,
        timeout=RECEIVE_TIMEOUT_S,
    )


def ingest(broker: Address) -> aiomqtt.Client:
    return service(broker, INGEST_USER, INGEST_PASSWORD)


def suback_codes(granted: Sequence[int | ReasonCode]) -> list[int]:
    """SUBACK return codes: granted QoS 0-2, or 0x80 for a refusal (MQTT 3.1.1 section 3.9.3)."""
    return [code if isinstance(code, int) else code.value for code in granted]


async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(RECEIVE_TIMEOUT_S):
        return await anext(client.messages)


async def assert_refused(client: aiomqtt.Client) -> None:
    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        async with client:
            pass
    assert "not authorized" in str(refused.value).lower()


# -- a broker of the test's own, to read its denial counters -------------------------------------


@dataclass
class CountedBroker:
    broker: EmbeddedBroker
    address: BrokerAddress

    @property
    def denials(self) -> Counter[str]:
        return self.broker.denials


@pytest.fixture
async def counted_broker(test_vehicles: Any) -> AsyncIterator[CountedBroker]:
    services = ServiceAccounts(
        {
            INGEST_USER: (
                INGEST_PASSWORD,
                ServiceIdentity(INGEST_USER, frozenset({ServiceRole.INGEST})),
            ),
            COMMANDER_USER: (
                COMMANDER_PASSWORD,
                ServiceIdentity(COMMANDER_USER, frozenset({ServiceRole.COMMANDER})),
            ),
            # A verifier that would accept an unsafe name: the plugin must refuse it anyway.
            "svc/wild+": (
                "wild-secret",
                ServiceIdentity("svc/wild+", frozenset({ServiceRole.INGEST})),
            ),
        }
    )
    port = free_port()
    broker = EmbeddedBroker(FirstMatch([services, test_vehicles]), port=port)
    await broker.start()
    yield CountedBroker(broker, BrokerAddress("127.0.0.1", port))
    await broker.stop()


# -- authentication -------------------------------------------------------------------------------


async def test_vehicle_logs_in_with_its_vin_and_secret(amqtt_broker: Address) -> None:
    async with car(amqtt_broker, VIN_A) as client:
        granted = await client.subscribe(topic(VIN_A, "commands"), qos=1)
    assert suback_codes(granted) == [1]


async def test_wrong_password_is_refused(amqtt_broker: Address) -> None:
    await assert_refused(car(amqtt_broker, VIN_A, password=password_of(VIN_B)))


async def test_unknown_vin_is_refused(amqtt_broker: Address) -> None:
    unknown = "1HGCM82633A004352"
    await assert_refused(car(amqtt_broker, unknown, password=password_of(unknown)))


async def test_anonymous_client_is_refused(amqtt_broker: Address) -> None:
    client = aiomqtt.Client(
        amqtt_broker.host, amqtt_broker.port, identifier="anon", timeout=RECEIVE_TIMEOUT_S
    )
    await assert_refused(client)


async def test_client_id_must_equal_the_vin(amqtt_broker: Address) -> None:
    await assert_refused(car(amqtt_broker, VIN_A, identifier=VIN_B))
    await assert_refused(car(amqtt_broker, VIN_A, identifier="my-car"))


@pytest.mark.parametrize(
    "username", ["WVWZZZ1JZXW00000+", "WVWZZZ1JZXW00000#", "WVWZZ/1JZXW000001"]
)
async def test_username_with_wildcards_or_separator_is_refused(
    amqtt_broker: Address, username: str
) -> None:
    client = aiomqtt.Client(
        amqtt_broker.host,
        amqtt_broker.port,
        identifier="probe",
        username=username,
        password="secret",
        timeout=RECEIVE_TIMEOUT_S,
    )
    await assert_refused(client)


async def test_unsafe_names_are_refused_even_when_a_verifier_accepts_them(
    counted_broker: CountedBroker,
) -> None:
    await assert_refused(service(counted_broker.address, "svc/wild+", "wild-secret"))
    await assert_refused(car(counted_broker.address, VIN_A, identifier="a/b"))
    assert counted_broker.denials == Counter({DenyReason.UNSAFE_IDENTITY: 2})


async def test_will_on_another_vins_topic_is_refused_at_connect(amqtt_broker: Address) -> None:
    will = aiomqtt.Will(topic(VIN_B, "presence"), b'{"state": "offline"}', qos=1, retain=True)
    await assert_refused(car(amqtt_broker, VIN_A, will=will))


async def test_will_on_own_presence_is_accepted(amqtt_broker: Address) -> None:
    will = aiomqtt.Will(topic(VIN_A, "presence"), b'{"state": "offline"}', qos=1, retain=True)
    async with car(amqtt_broker, VIN_A, will=will) as client:
        await client.publish(topic(VIN_A, "presence"), b'{"state": "online"}', qos=1)


# -- publish --------------------------------------------------------------------------------------


async def test_vehicle_cannot_publish_under_another_vin(amqtt_broker: Address) -> None:
    async with ingest(amqtt_broker) as backend:
        await backend.subscribe("v1/vehicles/+/telemetry", qos=1)
        async with car(amqtt_broker, VIN_A) as forger:
            # Forged and genuine messages interleaved: had a forged one been delivered, it would
            # arrive before the genuine message that followed it on the same connection.
            await forger.publish(topic(VIN_B, "telemetry"), b"forged-1", qos=1)
            await forger.publish(topic(VIN_A, "telemetry"), b"own-1", qos=1)
            await forger.publish(topic(VIN_C, "telemetry"), b"forged-2", qos=1)
            await forger.publish(topic(VIN_A, "telemetry"), b"own-2", qos=1)
        first = await next_message(backend)
        second = await next_message(backend)
    assert [(m.topic.value, m.payload) for m in (first, second)] == [
        (topic(VIN_A, "telemetry"), b"own-1"),
        (topic(VIN_A, "telemetry"), b"own-2"),
    ]


async def test_ingest_is_granted_its_shared_subscription_filter(amqtt_broker: Address) -> None:
    # amqtt speaks MQTT 3.1.1 and treats $share/... literally (no load sharing); what matters
    # here is that the policy grants it, as Mosquitto does for FLEETLINK_INGEST_SHARE_GROUP.
    async with ingest(amqtt_broker) as backend:
        granted = await backend.subscribe("$share/ingest/v1/vehicles/+/telemetry", qos=1)
        refused = await backend.subscribe("$share/ingest/v1/vehicles/+/commands", qos=1)
    assert suback_codes(granted) == [1]
    assert suback_codes(refused) == [SUBACK_FAILURE]


# -- subscribe ------------------------------------------------------------------------------------


async def test_forbidden_subscriptions_get_0x80_and_deliver_nothing(
    counted_broker: CountedBroker,
) -> None:
    address = counted_broker.address
    forbidden = ["#", "v1/vehicles/+/telemetry", topic(VIN_B, "commands")]
    async with (
        car(address, VIN_A) as spy,
        ingest(address) as backend,
        service(address, COMMANDER_USER, COMMANDER_PASSWORD) as commander,
    ):
        for topic_filter in forbidden:
            codes = await spy.subscribe(topic_filter, qos=1)
            assert suback_codes(codes) == [SUBACK_FAILURE], topic_filter
        granted = await spy.subscribe(topic(VIN_A, "commands"), qos=1)
        assert suback_codes(granted) == [1]
        await backend.subscribe("v1/vehicles/+/telemetry", qos=1)

        async with car(address, VIN_B) as other:
            await other.publish(topic(VIN_B, "telemetry"), b"b-telemetry", qos=1)
        assert (await next_message(backend)).payload == b"b-telemetry"  # it was delivered...
        await commander.publish(topic(VIN_B, "commands"), b"for-b", qos=1)
        await commander.publish(topic(VIN_A, "commands"), b"for-a", qos=1)
        # ...but not to the spy: the first thing it receives is its own command, sent last.
        received = await next_message(spy)
    assert (received.topic.value, received.payload) == (topic(VIN_A, "commands"), b"for-a")
    assert counted_broker.denials == Counter({DenyReason.SUBSCRIBE_FORBIDDEN: len(forbidden)})


# -- denial counters ------------------------------------------------------------------------------


async def test_denials_are_counted_by_reason(counted_broker: CountedBroker) -> None:
    address = counted_broker.address
    await assert_refused(car(address, VIN_A, password="wrong"))
    await assert_refused(car(address, "1HGCM82633A004352", password="whatever"))
    await assert_refused(car(address, VIN_A, identifier=VIN_B))
    will = aiomqtt.Will(topic(VIN_B, "presence"), b"x", qos=1)
    await assert_refused(car(address, VIN_A, will=will))
    await assert_refused(
        aiomqtt.Client(address.host, address.port, identifier="anon", timeout=RECEIVE_TIMEOUT_S)
    )
    async with car(address, VIN_A) as client, ingest(address) as backend:
        await backend.subscribe("v1/vehicles/+/telemetry", qos=1)
        await client.publish(topic(VIN_B, "telemetry"), b"forged", qos=1)
        await client.publish(topic(VIN_A, "commands"), b"self-command", qos=1)
        await client.publish(topic(VIN_A, "telemetry"), b"own", qos=1)
        await client.subscribe("#", qos=1)
        # the genuine message arriving proves the broker has handled the two before it
        assert (await next_message(backend)).payload == b"own"
    assert counted_broker.denials == Counter(
        {
            DenyReason.BAD_CREDENTIALS: 2,
            DenyReason.CLIENT_ID_MISMATCH: 1,
            DenyReason.WILL_TOPIC_FORBIDDEN: 1,
            DenyReason.NO_CREDENTIALS: 1,
            DenyReason.PUBLISH_FORBIDDEN: 2,
            DenyReason.SUBSCRIBE_FORBIDDEN: 1,
        }
    )


async def test_failed_login_with_a_connected_vins_client_id_does_not_disturb_that_car(
    counted_broker: CountedBroker,
) -> None:
    address = counted_broker.address
    async with car(address, VIN_A) as genuine, ingest(address) as backend:
        await backend.subscribe("v1/vehicles/+/telemetry", qos=1)
        await assert_refused(car(address, VIN_A, password="guess"))
        await genuine.publish(topic(VIN_A, "telemetry"), b"still-here", qos=1)
        async with car(address, VIN_B) as other:  # a sentinel sent after it
            await other.publish(topic(VIN_B, "telemetry"), b"sentinel", qos=1)
        first = await next_message(backend)
    assert first.payload == b"still-here"
    assert counted_broker.denials == Counter({DenyReason.BAD_CREDENTIALS: 1})


# -- a plain paho-mqtt client (what a third-party vehicle client would use) --------------------


def _paho_session(
    host: str, port: int, vin: str, password: str, payload: bytes
) -> tuple[ReasonCode, bool]:
    """Connect, publish one QoS 1 telemetry message when accepted; (CONNACK code, published)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=vin)
    client.username_pw_set(vin, password)
    connack: list[ReasonCode] = []
    answered = threading.Event()

    def on_connect(*args: Any) -> None:
        connack.append(args[3])
        answered.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=10)
    client.loop_start()
    try:
        assert answered.wait(RECEIVE_TIMEOUT_S), "no CONNACK"
        if connack[0].is_failure:
            return connack[0], False
        info = client.publish(topic(vin, "telemetry"), payload, qos=1)
        info.wait_for_publish(RECEIVE_TIMEOUT_S)
        return connack[0], info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


async def test_plain_paho_client_publishes_and_is_refused_with_a_wrong_secret(
    amqtt_broker: Address,
) -> None:
    host, port = amqtt_broker.host, amqtt_broker.port
    async with ingest(amqtt_broker) as backend:
        await backend.subscribe("v1/vehicles/+/telemetry", qos=1)
        refused, _ = await asyncio.to_thread(_paho_session, host, port, VIN_C, "nope", b"x")
        assert refused.is_failure
        accepted, published = await asyncio.to_thread(
            _paho_session, host, port, VIN_C, password_of(VIN_C), b'{"seq": 7}'
        )
        assert not accepted.is_failure
        assert published
        message = await next_message(backend)
    assert (message.topic.value, message.payload) == (topic(VIN_C, "telemetry"), b'{"seq": 7}')
