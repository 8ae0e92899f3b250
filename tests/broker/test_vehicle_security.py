"""Vehicle identity and broker security on the embedded amqtt broker, wired as production wires
it (``fleetlink.runtime.embedded_stack``, issue 4).

The registry on PostgreSQL verifies passwords and client certificates, the identity watch applies
revocations to live sessions, and an ingest worker stores what the broker lets through, so every
case ends in the database, not in a mock. Every client is a real MQTT client (aiomqtt, or plain
paho-mqtt where noted). ``test_amqtt_policy.py`` covers the policy plugin with an in-memory
verifier; the Mosquitto side of the matrix is ``test_mosquitto_config.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiomqtt
import asyncpg
import paho.mqtt.client as paho
import pytest
from argon2 import PasswordHasher
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from api.vehicle_registry import Credentials, VehicleRegistry, VehicleSpec
from broker.amqtt_plugin import DenyReason
from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker, TlsListener
from broker.fleet_ca import FleetCA, IssuedCertificate
from broker.policy import ServiceIdentity, ServiceRole
from broker.throttle import LoginThrottle
from fleetlink.embedded_postgres import free_port
from fleetlink.identity_watch import IdentityWatch
from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from ingest.store import TelemetryStore
from protocol.catalogue import Powertrain
from protocol.clock import SYSTEM_CLOCK
from protocol.endpoint import MqttEndpoint
from protocol.vin import Vin

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"
UNKNOWN_VIN = "1HGCM82633A004352"  # well-formed, never registered
INGEST_USER = "svc-ingest"  # fleetlink.runtime.INGEST_SERVICE
COMMANDER_USER = "svc-commander"
SPEED = "Vehicle.Speed"
TIMEOUT_S = 5.0  # connect, receive, and "stored" deadlines
REVOCATION_DEADLINE_S = 5.0  # issue 4, "Must show" 3
SUBACK_FAILURE = 0x80
# CONNACK return codes (MQTT 3.1.1 section 3.2.2.3), and the MQTT 5 reason codes paho reports
# for them.
NOT_AUTHORISED = frozenset({5, 135})
SERVER_UNAVAILABLE = frozenset({3, 136})


# -- small helpers --------------------------------------------------------------------------------


def topic(vin: str, suffix: str) -> str:
    return f"v1/vehicles/{vin}/{suffix}"


def telemetry(seq: int, speed: float, *, ts_ms: int | None = None) -> bytes:
    ts = SYSTEM_CLOCK.now_ms() if ts_ms is None else ts_ms
    return json.dumps({"seq": seq, "samples": [{"ts": ts, "signals": {SPEED: speed}}]}).encode()


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = TIMEOUT_S
) -> float:
    """Poll ``check`` until it holds; the seconds it took. Fails with ``what`` at the deadline."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def connack_code(rc: int | ReasonCode | None) -> int | None:
    return rc.value if isinstance(rc, ReasonCode) else rc


def is_not_authorised(rc: int | ReasonCode | None) -> bool:
    return connack_code(rc) in NOT_AUTHORISED


async def assert_not_authorised(client: aiomqtt.Client) -> None:
    """The broker answers the CONNECT with CONNACK "not authorised"."""
    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        async with client:
            pass
    assert is_not_authorised(refused.value.rc), refused.value


def suback_codes(granted: Any) -> list[int]:
    return [code if isinstance(code, int) else code.value for code in granted]


@contextlib.asynccontextmanager
async def dropped_by_broker(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """``async with client`` for a connection the broker is expected to drop: leaving it does
    not raise about the connection being gone already."""
    await client.__aenter__()
    try:
        yield client
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)


async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(TIMEOUT_S):
        return await anext(client.messages)


# -- the stack: registry, fleet CA, broker with password and mTLS listeners, watch, ingest ------


@dataclass
class SecuredStack:
    pool: asyncpg.Pool
    registry: VehicleRegistry
    fleet_ca: FleetCA
    broker: EmbeddedBroker
    watch: IdentityWatch
    worker: IngestWorker
    port: int
    tls_port: int
    ca_file: Path
    files: Path
    database_url: str
    service_passwords: dict[str, str] = field(default_factory=dict)

    @property
    def denials(self) -> Counter[str]:
        return self.broker.denials

    async def register(self, vin: str) -> Credentials:
        spec = VehicleSpec(Vin(vin), "Volkswagen", "ID.3", 2024, Powertrain.BEV)
        return await self.registry.register(spec)

    def car(
        self, vin: str, password: str | None, *, identifier: str | None = None, **options: Any
    ) -> aiomqtt.Client:
        return aiomqtt.Client(
            HOST,
            self.port,
            identifier=vin if identifier is None else identifier,
            username=vin,
            password=password,
            timeout=TIMEOUT_S,
            **options,
        )

    def service(self, user: str) -> aiomqtt.Client:
        return aiomqtt.Client(
            HOST,
            self.port,
            identifier=f"{user}-test",
            username=user,
            password=self.service_passwords[user],
            timeout=TIMEOUT_S,
        )

    def certificate_files(self, issued: IssuedCertificate, name: str) -> tuple[Path, Path]:
        assert issued.private_key_pem is not None
        cert, key = self.files / f"{name}.crt", self.files / f"{name}.key"
        cert.write_bytes(issued.certificate_pem)
        key.write_bytes(issued.private_key_pem)
        key.chmod(0o600)
        return cert, key

    def tls_car(self, vin: str, issued: IssuedCertificate) -> aiomqtt.Client:
        """A car on the mTLS listener with only its client certificate: no password."""
        return aiomqtt.Client(
            HOST,
            self.tls_port,
            identifier=vin,
            tls_context=self.tls_context(issued),
            timeout=TIMEOUT_S,
        )

    def tls_context(self, issued: IssuedCertificate) -> ssl.SSLContext:
        cert, key = self.certificate_files(issued, f"{issued.vin}-{issued.serial:x}")
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        context.load_cert_chain(cert, key)
        return context

    async def state(self, vin: str) -> float | None:
        value: float | None = await self.pool.fetchval(
            "SELECT value FROM vehicle_state WHERE vin = $1 AND signal = $2", vin, SPEED
        )
        return value

    async def stored(self, vin: str) -> int:
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM telemetry_values WHERE vin = $1", vin
        )
        return count

    async def traces(self, vin: str) -> dict[str, int]:
        """Rows about ``vin`` in every table ingest writes."""
        tables = (
            "telemetry",
            "vehicle_state",
            "vehicle_presence",
            "dead_letters",
            "ingest_sequences",
        )
        return {
            table: await self.pool.fetchval(f"SELECT count(*) FROM {table} WHERE vin = $1", vin)
            for table in tables
        }

    async def seqs_stored(self, vin: str) -> list[int]:
        """Each test sample carries its seq as the speed."""
        rows = await self.pool.fetch(
            "SELECT value FROM telemetry_values WHERE vin = $1 AND signal = $2 ORDER BY ts",
            vin,
            SPEED,
        )
        return [int(r["value"]) for r in rows]

    async def wait_stored(self, vin: str, at_least: int) -> None:
        async def enough() -> bool:
            return await self.stored(vin) >= at_least

        await eventually(enough, f"{at_least} telemetry rows for {vin}")

    async def wait_offline(self, vin: str, timeout_s: float = REVOCATION_DEADLINE_S) -> float:
        async def gone() -> bool:
            return vin not in self.broker.connected_clients()

        return await eventually(gone, f"{vin} disconnected by the broker", timeout_s)


StartStack = Callable[..., Awaitable[SecuredStack]]


async def _background(
    stack: contextlib.AsyncExitStack,
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    name: str,
    *,
    cancel: bool = False,
) -> asyncio.Task[None]:
    """``run(stop)`` as a task the exit stack stops and awaits (an exception it died of fails
    the test at teardown). ``cancel``: cancel it right after setting ``stop``, for a loop that
    looks at ``stop`` only once a second (the identity watch), to keep teardown fast."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop), name=name)

    async def halt() -> None:
        stop.set()
        if cancel:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)

    stack.push_async_callback(halt)
    return task


async def _wait_started(event: asyncio.Event, task: asyncio.Task[None], what: str) -> None:
    waiter = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=30, return_when="FIRST_COMPLETED")
    waiter.cancel()
    if task in done:
        task.result()  # raises what stopped it
    assert waiter in done, f"{what} did not start"


@pytest.fixture
async def start_stack(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> AsyncIterator[StartStack]:
    """Starts the stack as ``fleetlink.runtime.embedded_stack`` does, on this test's database.
    ``throttle`` and ``hasher`` exist only for the cases that need them; the defaults are
    production's."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            throttle: LoginThrottle | None = None, hasher: PasswordHasher | None = None
        ) -> SecuredStack:
            now = datetime.fromtimestamp(SYSTEM_CLOCK.now_ms() / 1000, UTC)
            ingest_secret = os.urandom(18).hex()
            commander_secret = os.urandom(18).hex()
            services = ServiceAccounts(
                {
                    INGEST_USER: (
                        ingest_secret,
                        ServiceIdentity(INGEST_USER, frozenset({ServiceRole.INGEST})),
                    ),
                    COMMANDER_USER: (
                        commander_secret,
                        ServiceIdentity(COMMANDER_USER, frozenset({ServiceRole.COMMANDER})),
                    ),
                }
            )
            ca_dir = tmp_path / "ca"
            fleet_ca = FleetCA.load_or_create(ca_dir, now=now)
            options: dict[str, Any] = {"hasher": hasher} if hasher is not None else {}
            registry = VehicleRegistry(
                pool, ca_certificate_pem=fleet_ca.certificate_pem, clock=SYSTEM_CLOCK, **options
            )
            # fleetlink.runtime._tls_listener: a server certificate issued afresh by the fleet CA.
            certificate, key = fleet_ca.issue_server_certificate(
                hostnames=["localhost"], ip_addresses=[HOST], now=now
            )
            paths = ca_dir / "broker.crt", ca_dir / "broker.key", ca_dir / "fleet-ca.crt"
            paths[0].write_bytes(certificate)
            paths[1].write_bytes(key)
            paths[1].chmod(0o600)
            port, tls_port = free_port(), free_port()
            broker = EmbeddedBroker(
                FirstMatch([services, registry]),
                host=HOST,
                port=port,
                tls=TlsListener(tls_port, *paths),
                certificates=registry,
                throttle=throttle,
            )
            await broker.start()
            stack.push_async_callback(broker.stop)

            watch = IdentityWatch(database_url, registry, broker)
            watching = await _background(stack, watch.run, "identity watch", cancel=True)
            await _wait_started(watch.listening, watching, "identity watch")

            endpoint = MqttEndpoint(HOST, port).with_credentials(INGEST_USER, ingest_secret)
            worker = IngestWorker(
                TelemetryStore(pool), endpoint, IngestSettings(), clock=SYSTEM_CLOCK
            )
            ingesting = await _background(stack, worker.run, "ingest")
            await _wait_started(worker.subscribed, ingesting, "ingest")

            files = tmp_path / "clients"
            files.mkdir(exist_ok=True)
            return SecuredStack(
                pool=pool,
                registry=registry,
                fleet_ca=fleet_ca,
                broker=broker,
                watch=watch,
                worker=worker,
                port=port,
                tls_port=tls_port,
                ca_file=paths[2],
                files=files,
                database_url=database_url,
                service_passwords={INGEST_USER: ingest_secret, COMMANDER_USER: commander_secret},
            )

        yield start


@pytest.fixture
async def secured_stack(start_stack: StartStack) -> SecuredStack:
    return await start_stack()


def utcnow() -> datetime:
    return datetime.fromtimestamp(SYSTEM_CLOCK.now_ms() / 1000, UTC)


# -- 1-3: password logins -------------------------------------------------------------------------


async def test_registered_vehicle_logs_in_and_its_telemetry_reaches_vehicle_state(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    creds = await stack.register(VIN_A)
    async with stack.car(creds.username, creds.password) as car:
        await car.publish(topic(VIN_A, "telemetry"), telemetry(1, 42.5), qos=1)

    async def in_state() -> bool:
        return await stack.state(VIN_A) == 42.5

    await eventually(in_state, "the sample in vehicle_state")
    assert stack.denials == Counter()


async def test_wrong_password_is_refused_and_counted_as_bad_credentials(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    await stack.register(VIN_A)
    other = await stack.register(VIN_B)
    await assert_not_authorised(stack.car(VIN_A, "not-the-secret"))
    await assert_not_authorised(stack.car(VIN_A, other.password))  # B's secret is not A's
    assert stack.denials == Counter({DenyReason.BAD_CREDENTIALS: 2})
    assert VIN_A not in stack.broker.connected_clients()


async def test_unknown_vin_is_refused(secured_stack: SecuredStack) -> None:
    stack = secured_stack
    registered = await stack.register(VIN_A)
    # Even with a secret that is valid for another car.
    await assert_not_authorised(stack.car(UNKNOWN_VIN, registered.password))
    assert stack.denials == Counter({DenyReason.BAD_CREDENTIALS: 1})


# -- 4: revocation --------------------------------------------------------------------------------


async def test_revoked_vehicle_cannot_open_a_new_connection(secured_stack: SecuredStack) -> None:
    stack = secured_stack
    creds = await stack.register(VIN_A)
    async with stack.car(VIN_A, creds.password):  # admitted before (and cached by the registry)
        pass
    await stack.registry.revoke(VIN_A)
    await assert_not_authorised(stack.car(VIN_A, creds.password))
    assert stack.denials == Counter({DenyReason.BAD_CREDENTIALS: 1})


async def test_revoking_a_connected_vehicle_disconnects_it_within_5_s_for_good(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    creds = await stack.register(VIN_A)
    async with dropped_by_broker(stack.car(VIN_A, creds.password)) as car:
        await car.subscribe(topic(VIN_A, "commands"), qos=1)
        assert VIN_A in stack.broker.connected_clients()
        started = time.monotonic()
        await stack.registry.revoke(VIN_A)
        # The car itself notices: its message stream ends with a disconnection.
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(REVOCATION_DEADLINE_S):
                await anext(car.messages)
        elapsed = time.monotonic() - started
    assert elapsed < REVOCATION_DEADLINE_S, f"disconnected after {elapsed:.2f} s"
    assert VIN_A not in stack.broker.connected_clients()
    assert stack.watch.disconnected == 1
    await assert_not_authorised(stack.car(VIN_A, creds.password))


# -- 5: client id ---------------------------------------------------------------------------------


async def test_client_id_different_from_username_is_refused(secured_stack: SecuredStack) -> None:
    stack = secured_stack
    creds = await stack.register(VIN_A)
    await stack.register(VIN_B)
    await assert_not_authorised(stack.car(VIN_A, creds.password, identifier=VIN_B))
    await assert_not_authorised(stack.car(VIN_A, creds.password, identifier="my-car"))
    assert stack.denials == Counter({DenyReason.CLIENT_ID_MISMATCH: 2})


# -- 6: publishing for another car ----------------------------------------------------------------


async def test_vehicle_publishing_to_another_vins_telemetry_stores_nothing_for_it(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    creds_a = await stack.register(VIN_A)
    await stack.register(VIN_B)
    async with stack.car(VIN_A, creds_a.password) as forger:
        await forger.publish(topic(VIN_B, "telemetry"), telemetry(1, 111.0), qos=1)
        await forger.publish(topic(VIN_B, "events"), b'{"seq": 1, "ts": 1, "type": "crash"}', qos=1)
        await forger.publish(topic(VIN_B, "presence"), b'{"state": "offline"}', qos=1)
        # A's own message, sent after the forgeries on the same connection.
        await forger.publish(topic(VIN_A, "telemetry"), telemetry(2, 22.0), qos=1)
    await stack.wait_stored(VIN_A, 1)
    assert set((await stack.traces(VIN_B)).values()) == {0}
    assert await stack.state(VIN_A) == 22.0
    assert stack.denials == Counter({DenyReason.PUBLISH_FORBIDDEN: 3})


# -- 7: subscribing to what is not yours ----------------------------------------------------------


async def test_forbidden_subscriptions_are_refused_and_receive_no_commands(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    creds_a = await stack.register(VIN_A)
    await stack.register(VIN_B)
    forbidden = ["#", "v1/vehicles/+/telemetry", topic(VIN_B, "commands")]
    async with (
        stack.car(VIN_A, creds_a.password) as spy,
        stack.service(COMMANDER_USER) as commander,
    ):
        for topic_filter in forbidden:
            assert suback_codes(await spy.subscribe(topic_filter, qos=1)) == [SUBACK_FAILURE]
        assert suback_codes(await spy.subscribe(topic(VIN_A, "commands"), qos=1)) == [1]
        await commander.publish(topic(VIN_B, "commands"), b'{"for": "B"}', qos=1)
        await commander.publish(topic(VIN_A, "commands"), b'{"for": "A"}', qos=1)
        # Had B's command leaked, it would arrive before A's, sent after it on one connection.
        received = await next_message(spy)
    assert (received.topic.value, received.payload) == (topic(VIN_A, "commands"), b'{"for": "A"}')
    assert stack.denials == Counter({DenyReason.SUBSCRIBE_FORBIDDEN: len(forbidden)})


# -- 8: names that would widen an ACL pattern -----------------------------------------------------


@dataclass
class PahoConnack:
    """What a plain paho client saw: the CONNACK code, or None if the server just closed."""

    reason: ReasonCode | None


def paho_connect(
    port: int,
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    *,
    tls: ssl.SSLContext | None = None,
) -> PahoConnack:
    """Connect with plain paho-mqtt (driving its loop by hand) and report the CONNACK."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set_context(tls)
    seen: list[ReasonCode] = []
    client.on_connect = lambda *args: seen.append(args[3])
    deadline = time.monotonic() + TIMEOUT_S
    try:
        client.connect(HOST, port, keepalive=10)
        while not seen and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != paho.MQTT_ERR_SUCCESS:
                break  # the server closed the connection
    except (OSError, ssl.SSLError):
        pass  # e.g. a TLS alert during the handshake
    finally:
        client.disconnect()
    assert seen or time.monotonic() < deadline, "neither CONNACK nor close"
    return PahoConnack(seen[0] if seen else None)


async def assert_refused_by_paho(
    port: int,
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    *,
    tls: ssl.SSLContext | None = None,
) -> PahoConnack:
    result = await asyncio.to_thread(paho_connect, port, client_id, username, password, tls=tls)
    # Refused: CONNACK with a failure code, or (MQTT 3.1.1 section 1.5.3, and a TLS alert)
    # the connection closed without any CONNACK.
    assert result.reason is None or result.reason.is_failure, result
    return result


async def test_usernames_with_wildcards_separator_or_nul_are_refused(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    creds = await stack.register(VIN_A)
    for unsafe in (VIN_A[:-1] + "+", VIN_A[:-1] + "#", VIN_A[:8] + "/" + VIN_A[9:]):
        # client id == username, as the policy wants; the name alone is what is wrong.
        await assert_not_authorised(stack.car(unsafe, creds.password))
    # NUL: a C broker would see "VIN_A" in "VIN_A\0..." (plain paho sends it as given).
    nul = VIN_A + "\x00x"
    await assert_refused_by_paho(stack.port, nul, nul, creds.password)
    assert stack.denials == Counter({DenyReason.UNSAFE_IDENTITY: 4})
    assert all(VIN_A not in c for c in stack.broker.connected_clients())


async def test_client_ids_with_wildcards_separator_or_nul_are_refused(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    creds = await stack.register(VIN_A)
    for unsafe in (VIN_A + "+", VIN_A + "/#", VIN_A + "/x"):
        # The right username and secret; only the client id is unsafe.
        await assert_not_authorised(stack.car(VIN_A, creds.password, identifier=unsafe))
    await assert_refused_by_paho(stack.port, VIN_A + "\x00", VIN_A, creds.password)
    assert stack.denials == Counter({DenyReason.UNSAFE_IDENTITY: 4})
    assert all(VIN_A not in c for c in stack.broker.connected_clients())


# -- 9: mutual TLS --------------------------------------------------------------------------------


async def test_mtls_recorded_certificate_connects_without_password_and_publishes(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    await stack.register(VIN_A)
    issued = stack.fleet_ca.issue_vehicle_certificate(VIN_A, now=utcnow())
    await stack.registry.record_certificate(issued)
    async with stack.tls_car(VIN_A, issued) as car:
        assert VIN_A in stack.broker.connected_clients()
        await car.publish(topic(VIN_A, "telemetry"), telemetry(1, 77.0), qos=1)

    async def in_state() -> bool:
        return await stack.state(VIN_A) == 77.0

    await eventually(in_state, "the mTLS car's sample in vehicle_state")
    assert stack.denials == Counter()


async def assert_tls_fails(stack: SecuredStack, issued: IssuedCertificate) -> None:
    """The broker's TLS layer rejects the certificate: no CONNACK at all, never admitted.

    Plain paho here: with TLS 1.3 the server checks the client certificate after the client
    has finished its side of the handshake, and aiomqtt would only notice at its timeout."""
    result = await assert_refused_by_paho(stack.tls_port, issued.vin, tls=stack.tls_context(issued))
    assert result.reason is None, result
    assert issued.vin not in stack.broker.connected_clients()
    assert stack.denials == Counter()  # the MQTT layer never saw it


async def test_mtls_expired_certificate_fails(secured_stack: SecuredStack) -> None:
    stack = secured_stack
    await stack.register(VIN_A)
    two_years_ago = utcnow() - timedelta(days=730)
    expired = stack.fleet_ca.issue_vehicle_certificate(VIN_A, now=two_years_ago, validity_days=365)
    await stack.registry.record_certificate(expired)  # recorded: its age is its only fault
    await assert_tls_fails(stack, expired)
    # Second line of defence, should a TLS terminator ever pass it on.
    der = _der(expired)
    assert await stack.registry.verify_certificate(der) is None


async def test_mtls_certificate_from_a_foreign_ca_fails(secured_stack: SecuredStack) -> None:
    stack = secured_stack
    await stack.register(VIN_A)
    foreign_ca = FleetCA.create(now=utcnow())  # same name "FleetLink Fleet CA", other key
    forged = foreign_ca.issue_vehicle_certificate(VIN_A, now=utcnow())
    await stack.registry.record_certificate(forged)  # even if its serial were on record
    await assert_tls_fails(stack, forged)
    assert await stack.registry.verify_certificate(_der(forged)) is None


async def test_mtls_certificate_never_recorded_is_refused(secured_stack: SecuredStack) -> None:
    stack = secured_stack
    await stack.register(VIN_A)
    unrecorded = stack.fleet_ca.issue_vehicle_certificate(VIN_A, now=utcnow())
    await assert_not_authorised(stack.tls_car(VIN_A, unrecorded))
    assert stack.denials == Counter({DenyReason.BAD_CERTIFICATE: 1})


async def test_mtls_certificate_of_a_revoked_vehicle_is_refused(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    await stack.register(VIN_A)
    issued = stack.fleet_ca.issue_vehicle_certificate(VIN_A, now=utcnow())
    await stack.registry.record_certificate(issued)
    async with dropped_by_broker(stack.tls_car(VIN_A, issued)):  # good until revoked
        await stack.registry.revoke(VIN_A)
        elapsed = await stack.wait_offline(VIN_A)
    assert elapsed < REVOCATION_DEADLINE_S
    await assert_not_authorised(stack.tls_car(VIN_A, issued))
    assert stack.denials == Counter({DenyReason.BAD_CERTIFICATE: 1})


def _der(issued: IssuedCertificate) -> bytes:
    return ssl.PEM_cert_to_DER_cert(issued.certificate_pem.decode())


# -- 10: a failed login must not disturb the car it names -----------------------------------------


@pytest.mark.parametrize("clean_session", [True, False], ids=["clean", "persistent"])
async def test_failed_login_with_a_connected_cars_client_id_leaves_that_car_connected(
    secured_stack: SecuredStack, clean_session: bool
) -> None:
    stack = secured_stack
    creds = await stack.register(VIN_A)
    async with stack.car(VIN_A, creds.password, clean_session=False) as genuine:
        await genuine.subscribe(topic(VIN_A, "commands"), qos=1)
        attacker = stack.car(VIN_A, "guessed", clean_session=clean_session)
        await assert_not_authorised(attacker)
        assert VIN_A in stack.broker.connected_clients()
        await genuine.publish(topic(VIN_A, "telemetry"), telemetry(1, 33.0), qos=1)
        await stack.wait_stored(VIN_A, 1)
        # Its session (subscription included) is untouched as well.
        async with stack.service(COMMANDER_USER) as commander:
            await commander.publish(topic(VIN_A, "commands"), b'{"still": "yours"}', qos=1)
        assert (await next_message(genuine)).payload == b'{"still": "yours"}'
    assert stack.denials == Counter({DenyReason.BAD_CREDENTIALS: 1})


# -- 11: throttling -------------------------------------------------------------------------------


async def test_repeated_failures_throttle_the_source_until_the_window_passes(
    start_stack: StartStack,
) -> None:
    stack = await start_stack(throttle=LoginThrottle(failures=5, window_s=1.0))
    creds = await stack.register(VIN_A)
    first_failure = time.monotonic()
    for attempt in range(5):
        await assert_not_authorised(stack.car(VIN_A, f"guess-{attempt}"))
    await assert_not_authorised(stack.car(VIN_A, creds.password))  # right secret, still refused
    assert stack.denials == Counter({DenyReason.BAD_CREDENTIALS: 5, DenyReason.THROTTLED: 1})

    async def admitted() -> bool:
        try:
            async with stack.car(VIN_A, creds.password):
                return True
        except aiomqtt.MqttCodeError as refused:
            assert is_not_authorised(refused.rc)
            return False

    await eventually(admitted, "admission once the window has passed", timeout_s=3.0)
    assert time.monotonic() - first_failure >= 1.0
    assert set(stack.denials) == {DenyReason.BAD_CREDENTIALS, DenyReason.THROTTLED}


# -- 12: rotation ---------------------------------------------------------------------------------


@dataclass
class SteadyCar:
    """A car sampling at a steady rate into a buffer and publishing the buffer (QoS 1); it
    reconnects with whatever ``password`` is when ``reconnect`` is set."""

    stack: SecuredStack
    vin: str
    password: str
    interval_s: float = 0.02
    generated: int = 0
    acknowledged: int = 0
    connections: int = 0
    reconnect: asyncio.Event = field(default_factory=asyncio.Event)
    _buffer: deque[bytes] = field(default_factory=deque)
    _new_sample: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event) -> None:
        sampler = asyncio.create_task(self._sample(stop))
        try:
            while not (sampler.done() and not self._buffer):
                self.reconnect.clear()
                async with self.stack.car(self.vin, self.password) as client:
                    self.connections += 1
                    await self._publish(client, sampler)
        finally:
            sampler.cancel()

    async def _sample(self, stop: asyncio.Event) -> None:
        base_ms = SYSTEM_CLOCK.now_ms()
        while not stop.is_set():
            seq = self.generated
            self._buffer.append(telemetry(seq, float(seq), ts_ms=base_ms + seq))
            self.generated += 1
            self._new_sample.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
        self._new_sample.set()

    async def _publish(self, client: aiomqtt.Client, sampler: asyncio.Task[None]) -> None:
        while not self.reconnect.is_set():
            if self._buffer:
                # Dropped from the buffer only once the broker has acknowledged it.
                await client.publish(topic(self.vin, "telemetry"), self._buffer[0], qos=1)
                self._buffer.popleft()
                self.acknowledged += 1
            elif sampler.done():
                return
            else:
                self._new_sample.clear()
                reconnect = asyncio.create_task(self.reconnect.wait())
                sample = asyncio.create_task(self._new_sample.wait())
                await asyncio.wait({reconnect, sample}, return_when="FIRST_COMPLETED")
                reconnect.cancel()
                sample.cancel()


async def test_rotation_retires_the_old_secret_and_loses_no_data(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    old = await stack.register(VIN_A)
    car = SteadyCar(stack, VIN_A, old.password)
    stop = asyncio.Event()
    driving = asyncio.create_task(car.run(stop))
    try:
        await stack.wait_stored(VIN_A, 5)
        new = await stack.registry.rotate_secret(VIN_A)
        assert new.password != old.password
        await assert_not_authorised(stack.car(VIN_A, old.password))  # at once
        assert VIN_A in stack.broker.connected_clients()  # the live session is not cut

        before_reconnect = car.acknowledged
        car.password = new.password
        car.reconnect.set()

        async def reconnected() -> bool:
            return car.connections == 2

        await eventually(reconnected, "the car back with its new secret")
        await stack.wait_stored(VIN_A, before_reconnect + 5)
        stop.set()
        await asyncio.wait_for(driving, TIMEOUT_S)
    finally:
        stop.set()
        if not driving.done():
            driving.cancel()
    assert car.acknowledged == car.generated

    async def all_stored() -> bool:
        return await stack.stored(VIN_A) >= car.generated

    await eventually(all_stored, f"all {car.generated} samples stored")
    assert await stack.seqs_stored(VIN_A) == list(range(car.generated))
    assert await stack.stored(VIN_A) == car.generated
    await assert_not_authorised(stack.car(VIN_A, old.password))  # and still not, later
    assert stack.denials == Counter({DenyReason.BAD_CREDENTIALS: 2})


# -- races: a login in flight while the registry changes ------------------------------------------


class GatedHasher(PasswordHasher):
    """Production's argon2 parameters; ``arm()`` makes the next ``verify`` wait in its worker
    thread until ``release`` is set, i.e. after the registry has read the secret hash."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        self._armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def arm(self) -> None:
        self._armed = True

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        if self._armed:
            self._armed = False
            self.entered.set()
            self.release.wait(TIMEOUT_S)
        return super().verify(hash, password)


async def _login_in_flight(
    stack: SecuredStack, hasher: GatedHasher, vin: str, password: str
) -> tuple[asyncio.Task[None], asyncio.Event]:
    """A car whose CONNECT is being verified (the registry has read its hash); the task holds
    the connection open until the returned event is set."""
    leave = asyncio.Event()

    async def drive() -> None:
        async with stack.car(vin, password):
            await leave.wait()

    hasher.arm()
    task = asyncio.create_task(drive())
    assert await asyncio.to_thread(hasher.entered.wait, TIMEOUT_S), "login never reached argon2"
    return task, leave


async def _watch_caught_up(stack: SecuredStack, sentinel: Credentials) -> None:
    """Revoke a connected sentinel car and wait for the watch to drop it: notifications are
    handled in order, so everything notified before has been applied by then."""
    async with dropped_by_broker(stack.car(sentinel.username, sentinel.password)):
        before = stack.watch.disconnected
        await stack.registry.revoke(sentinel.username)

        async def dropped() -> bool:
            return stack.watch.disconnected > before

        await eventually(dropped, "the identity watch to apply the sentinel's revocation")


async def test_old_secret_verified_during_rotation_stops_working_after_it(
    start_stack: StartStack,
) -> None:
    hasher = GatedHasher()
    stack = await start_stack(hasher=hasher)
    old = await stack.register(VIN_A)
    sentinel = await stack.register(VIN_B)
    login, leave = await _login_in_flight(stack, hasher, VIN_A, old.password)
    await stack.registry.rotate_secret(VIN_A)
    await _watch_caught_up(stack, sentinel)  # the watch's forget() has run too
    hasher.release.set()
    leave.set()
    with contextlib.suppress(aiomqtt.MqttError):
        await login  # in flight during the rotation: admitted or refused, either is fine
    await assert_not_authorised(stack.car(VIN_A, old.password))


async def test_revocation_during_an_inflight_login_still_disconnects_within_5_s(
    start_stack: StartStack,
) -> None:
    hasher = GatedHasher()
    stack = await start_stack(hasher=hasher)
    creds = await stack.register(VIN_A)
    sentinel = await stack.register(VIN_B)
    login, leave = await _login_in_flight(stack, hasher, VIN_A, creds.password)
    try:
        revoked = time.monotonic()
        await stack.registry.revoke(VIN_A)
        await _watch_caught_up(stack, sentinel)  # VIN_A was not connected yet when it ran
        hasher.release.set()

        async def settled() -> bool:
            return login.done() or VIN_A in stack.broker.connected_clients()

        await eventually(settled, "the in-flight login to be admitted or refused")
        if not login.done():  # admitted: then it must go within 5 s of the revocation
            remaining = REVOCATION_DEADLINE_S - (time.monotonic() - revoked)
            await stack.wait_offline(VIN_A, timeout_s=max(remaining, 0.0))
    finally:
        leave.set()
        with contextlib.suppress(aiomqtt.MqttError):
            await login
    await assert_not_authorised(stack.car(VIN_A, creds.password))


# -- the registry's database goes away during a login ---------------------------------------------


@contextlib.asynccontextmanager
async def database_outage(database_url: str) -> AsyncIterator[None]:
    """The stack's database refuses new connections and loses the ones it has, until the block
    ends: as far as the registry can tell, PostgreSQL is down."""
    base, name = database_url.rsplit("/", 1)
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_login_during_a_registry_outage_is_refused_promptly(
    secured_stack: SecuredStack,
) -> None:
    stack = secured_stack
    creds = await stack.register(VIN_A)  # never logged in: nothing cached
    async with database_outage(stack.database_url):
        refusing = aiomqtt.Client(
            HOST, stack.port, identifier=VIN_A, username=VIN_A, password=creds.password, timeout=2
        )
        with pytest.raises(aiomqtt.MqttCodeError) as refused:  # fail closed, and say so at once
            async with refusing:
                pass
    # "not authorised", or better "server unavailable" (MQTT 3.1.1 section 3.2.2.3)
    assert connack_code(refused.value.rc) in NOT_AUTHORISED | SERVER_UNAVAILABLE, refused.value
    # and the broker did not lose the ability to admit cars once the database is back
    async with stack.car(VIN_A, creds.password):
        pass
