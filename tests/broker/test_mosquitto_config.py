"""The generated Mosquitto configuration: pure rendering, and a real Mosquitto started from it.

The integration tests register vehicles through ``VehicleRegistry``, write the configuration with
``fleetlink.mosquitto_sync``, start ``mosquitto -c DIR/mosquitto.conf`` on free loopback ports
and talk to it with plain paho clients (no FleetLink client code).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from api.vehicle_registry import BrokerCredential, VehicleRegistry, VehicleSpec
from broker.fleet_ca import FleetCA
from broker.mosquitto import (
    MosquittoConfigError,
    MosquittoLayout,
    MosquittoUsernameError,
    TlsListenerLayout,
    mosquitto_password_hash,
    render_acl,
    render_config,
    render_password_file,
)
from broker.policy import ServiceRole
from fleetlink.embedded_postgres import free_port
from fleetlink.mosquitto_sync import (
    FleetIdentity,
    IdentitySnapshot,
    MosquittoOptions,
    MosquittoPidFileError,
    ServiceSpecError,
    SyncState,
    parse_service,
    reload_mosquitto,
    sync_credentials,
    watch,
    write_mosquitto_config,
)
from protocol.catalogue import Powertrain
from protocol.vin import Vin

VIN_A, VIN_B = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"
# Mosquitto checks certificates and the CRL against the real clock.
NOW = datetime.now(UTC).replace(microsecond=0)
TIMEOUT_S = 5.0


# -- pure rendering -------------------------------------------------------------------------------


def test_password_file_is_sorted_and_refuses_unsafe_usernames() -> None:
    hash_ = mosquitto_password_hash("pw", salt=b"0" * 12)
    text = render_password_file([(VIN_B, hash_), ("svc-ingest", hash_), (VIN_A, hash_)])
    assert [line.split(":")[0] for line in text.splitlines()] == [VIN_A, VIN_B, "svc-ingest"]
    for bad in ("a:b", "a b", "a+b", "a#", "a/b", "", "a\x00b", "a\tb"):
        with pytest.raises(MosquittoUsernameError):
            render_password_file([(bad, hash_)])
    with pytest.raises(MosquittoUsernameError):
        render_password_file([(VIN_A, hash_), (VIN_A, hash_)])
    with pytest.raises(MosquittoConfigError):
        render_password_file([(VIN_A, "plaintext")])


def test_acl_mutes_revoked_vehicles_and_refuses_vin_like_service_names() -> None:
    acl = render_acl({"svc-ingest": frozenset({ServiceRole.INGEST})}, revoked_vins=[VIN_B])
    assert f"user {VIN_B}\ntopic deny #\n" in acl
    assert "pattern write v1/vehicles/%u/telemetry" in acl
    assert "topic read v1/vehicles/+/telemetry" in acl
    with pytest.raises(MosquittoUsernameError):
        render_acl({VIN_A: frozenset({ServiceRole.INGEST})})


def _layout(tmp_path: Path, *, tls: bool) -> MosquittoLayout:
    return MosquittoLayout(
        bind="127.0.0.1",
        mqtt_port=1883,
        password_file=tmp_path / "passwords",
        acl_file=tmp_path / "acl",
        persistence_location=tmp_path / "data",
        pid_file=tmp_path / "mosquitto.pid",
        tls=TlsListenerLayout(
            8883, tmp_path / "ca.crt", tmp_path / "s.crt", tmp_path / "s.key", tmp_path / "crl"
        )
        if tls
        else None,
    )


def test_config_puts_listener_options_after_their_listener(tmp_path: Path) -> None:
    conf = render_config(_layout(tmp_path, tls=True))
    lines = [line for line in conf.splitlines() if line and not line.startswith("#")]
    first_listener = lines.index("listener 1883 127.0.0.1")
    # Before any listener, use_username_as_clientid makes Mosquitto 2.0 open a default listener
    # on 1883; it must follow each listener instead.
    assert "use_username_as_clientid true" not in lines[:first_listener]
    assert lines.count("use_username_as_clientid true") == 2
    for line in (
        "per_listener_settings false",
        "allow_anonymous false",
        "require_certificate true",
        "use_identity_as_username true",
        "tls_version tlsv1.2",
        f"crlfile {tmp_path / 'crl'}",
        f"persistence_location {tmp_path / 'data'}/",
    ):
        assert line in lines
    assert "listener 8883" not in render_config(_layout(tmp_path, tls=False))


def test_service_specs() -> None:
    assert parse_service("svc-ota:commander+presence") == (
        "svc-ota",
        frozenset({ServiceRole.COMMANDER, ServiceRole.PRESENCE}),
    )
    for bad in ("svc", "svc:", "svc:admin", "a/b:ingest", f"{VIN_A}:ingest"):
        with pytest.raises(ServiceSpecError):
            parse_service(bad)


def test_reload_errors_are_typed(tmp_path: Path) -> None:
    pid_file = tmp_path / "mosquitto.pid"
    with pytest.raises(MosquittoPidFileError) as missing:
        reload_mosquitto(pid_file)
    assert missing.value.code == "mosquitto_pid_missing"
    pid_file.write_text("garbage\n")
    with pytest.raises(MosquittoPidFileError) as invalid:
        reload_mosquitto(pid_file)
    assert invalid.value.code == "mosquitto_pid_invalid"
    pid_file.write_text("4194303\n")  # above the default pid_max: never a live process
    with pytest.raises(MosquittoPidFileError) as dead:
        reload_mosquitto(pid_file)
    assert dead.value.code == "mosquitto_not_running"


@dataclass
class FakeSource:
    credentials: list[BrokerCredential] = field(default_factory=list)
    revoked: list[tuple[int, datetime]] = field(default_factory=list)

    async def snapshot(self) -> IdentitySnapshot:
        return IdentitySnapshot(list(self.credentials), list(self.revoked), [])


async def test_service_secrets_survive_reruns_and_sync_reloads_only_on_change(
    tmp_path: Path,
) -> None:
    source = FakeSource([BrokerCredential(VIN_A, mosquitto_password_hash("a"))])
    options = MosquittoOptions(
        mqtt_port=1883, tls_port=None, services={"svc-ingest": frozenset({ServiceRole.INGEST})}
    )
    first = await write_mosquitto_config(source, tmp_path, options, now=NOW)
    assert len(first.new_service_urls) == 1
    assert first.new_service_urls[0].startswith("mqtt://svc-ingest:")
    services = (tmp_path / "services.json").read_text()
    assert (tmp_path / "services.json").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "passwords").stat().st_mode & 0o777 == 0o600
    again = await write_mosquitto_config(source, tmp_path, options, now=NOW)
    assert again.new_service_urls == ()
    assert (tmp_path / "services.json").read_text() == services

    state = SyncState()
    assert await sync_credentials(source, tmp_path, options, state, now=NOW)
    assert not await sync_credentials(source, tmp_path, options, state, now=NOW)
    source.credentials.append(BrokerCredential(VIN_B, mosquitto_password_hash("b")))
    assert await sync_credentials(source, tmp_path, options, state, now=NOW)
    assert VIN_B in (tmp_path / "passwords").read_text()
    assert "svc-ingest:" in (tmp_path / "passwords").read_text()


# -- a real Mosquitto from the generated configuration --------------------------------------------


def _mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


@dataclass
class Broker:
    out_dir: Path
    mqtt_port: int
    tls_port: int
    options: MosquittoOptions
    identity: FleetIdentity
    registry: VehicleRegistry
    ca: FleetCA
    ingest_password: str
    passwords: dict[str, str]
    commands_password: str
    process: subprocess.Popen[bytes] | None = None

    def start(self, binary: str) -> None:
        log = (self.out_dir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "-c", str(self.out_dir / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.out_dir / "mosquitto.log").read_text())
            try:
                for port in (self.mqtt_port, self.tls_port):
                    with socket.create_connection(("127.0.0.1", port), 0.2):
                        pass
                if (self.out_dir / "mosquitto.pid").exists():
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # by pid: the Popen handle of the process we started
            self.process.wait(10)

    async def sync_now(self) -> None:
        """What ``watch`` does on a notification, run once."""
        await sync_credentials(self.identity, self.out_dir, self.options, SyncState(), now=NOW)
        reload_mosquitto(self.out_dir / "mosquitto.pid")
        await asyncio.sleep(0.3)  # Mosquitto handles SIGHUP in its next loop iteration


def _spec(vin: str) -> VehicleSpec:
    return VehicleSpec(Vin(vin), "VW", "Golf", 2024, Powertrain.ICE)


@pytest.fixture
async def broker(pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[Broker]:
    binary = _mosquitto_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    registry = VehicleRegistry(pool)
    passwords = {vin: (await registry.register(_spec(vin))).password for vin in (VIN_A, VIN_B)}
    # A CA that has existed for a while, so an already expired certificate can be issued.
    ca_dir = tmp_path / "ca"
    ca = FleetCA.load_or_create(ca_dir, now=NOW - timedelta(days=30))
    options = MosquittoOptions(
        mqtt_port=free_port(),
        tls_port=free_port(),
        services={
            "svc-ingest": frozenset({ServiceRole.INGEST}),
            "svc-commands": frozenset({ServiceRole.COMMANDER}),
        },
        ca_dir=ca_dir,
        run_as_user="root" if os.geteuid() == 0 else None,
    )
    out_dir = tmp_path / "mosquitto"
    identity = FleetIdentity(pool, registry)
    written = await write_mosquitto_config(identity, out_dir, options, now=NOW)
    secrets = {
        url.split("//")[1].split(":")[0]: url.split(":")[2].split("@")[0]
        for url in written.new_service_urls
    }
    ingest_password = secrets["svc-ingest"]
    assert options.tls_port is not None
    running = Broker(
        out_dir.resolve(),
        options.mqtt_port,
        options.tls_port,
        options,
        identity,
        registry,
        ca,
        ingest_password,
        passwords,
        secrets["svc-commands"],
    )
    await asyncio.to_thread(running.start, binary)
    yield running
    running.stop()


@pytest.fixture
async def watching(broker: Broker) -> AsyncIterator[Broker]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        watch(broker.identity, broker.out_dir, broker.options, stop, clock=lambda: NOW)
    )
    await asyncio.sleep(0.5)  # LISTEN is registered and the first sync done
    yield broker
    stop.set()
    await asyncio.wait_for(task, 5)


class Client:
    """A plain paho client on its own network thread; waits are awaitable."""

    def __init__(
        self,
        port: int,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.disconnected = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.message = threading.Event()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls is not None:
            ca, cert, key = tls
            self._client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._port = port

    def _on_connect(self, _c: object, _u: object, _f: object, rc: object, _p: object) -> None:
        (self.refused if getattr(rc, "is_failure", False) else self.connected).set()

    def _on_disconnect(self, _c: object, _u: object, _f: object, _rc: object, _p: object) -> None:
        self.disconnected.set()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        self.messages.append((msg.topic, bytes(msg.payload)))
        self.message.set()

    async def connect(self) -> bool:
        """True when admitted; False when refused or the TLS handshake failed."""
        try:
            await asyncio.to_thread(self._client.connect, "127.0.0.1", self._port, 30)
        except OSError:  # includes ssl.SSLError
            return False
        self._client.loop_start()
        admitted = await asyncio.to_thread(self._wait_for_outcome)
        if not admitted:
            self.close()
        return admitted

    def _wait_for_outcome(self) -> bool:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return True
            if self.refused.is_set() or self.disconnected.is_set():
                return False
            time.sleep(0.01)
        return False

    async def subscribe(self, topic_filter: str) -> None:
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.subscribe(topic_filter, qos=1)
        assert await asyncio.to_thread(subscribed.wait, TIMEOUT_S)

    async def publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1)
        await asyncio.to_thread(info.wait_for_publish, TIMEOUT_S)

    async def wait(self, event: threading.Event, seconds: float = TIMEOUT_S) -> bool:
        return await asyncio.to_thread(event.wait, seconds)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.close()


def telemetry(vin: str) -> str:
    return f"v1/vehicles/{vin}/telemetry"


async def _connect(clients: list[Client], port: int, client_id: str, **kwargs: object) -> Client:
    client = Client(port, client_id, **kwargs)  # type: ignore[arg-type]
    clients.append(client)
    return client


async def _ingest(broker: Broker, clients: list[Client]) -> Client:
    ingest = await _connect(
        clients,
        broker.mqtt_port,
        "svc-ingest",
        username="svc-ingest",
        password=broker.ingest_password,
    )
    assert await ingest.connect()
    await ingest.subscribe("v1/vehicles/+/telemetry")
    return ingest


@pytest.mark.mosquitto
async def test_vehicle_publishes_only_its_own_telemetry(
    broker: Broker, clients: list[Client]
) -> None:
    ingest = await _ingest(broker, clients)
    car = await _connect(
        clients, broker.mqtt_port, VIN_A, username=VIN_A, password=broker.passwords[VIN_A]
    )
    assert await car.connect()
    # Same connection, so a delivered foreign publish would arrive before the own one.
    await car.publish(telemetry(VIN_B), b"forged")
    await car.publish(telemetry(VIN_A), b"own")
    assert await ingest.wait(ingest.message)
    await asyncio.sleep(0.2)
    assert ingest.messages == [(telemetry(VIN_A), b"own")]


@pytest.mark.mosquitto
async def test_wrong_or_unknown_credentials_are_refused(
    broker: Broker, clients: list[Client]
) -> None:
    wrong = await _connect(clients, broker.mqtt_port, VIN_A, username=VIN_A, password="nope")
    assert not await wrong.connect()
    unknown = "WBA3A5C50CF256985"
    stranger = await _connect(clients, broker.mqtt_port, unknown, username=unknown, password="x")
    assert not await stranger.connect()
    anonymous = await _connect(clients, broker.mqtt_port, "anon")
    assert not await anonymous.connect()


@pytest.mark.mosquitto
async def test_client_id_is_forced_to_the_vin(broker: Broker, clients: list[Client]) -> None:
    password = broker.passwords[VIN_A]
    first = await _connect(
        clients, broker.mqtt_port, "not-the-vin", username=VIN_A, password=password
    )
    assert await first.connect()
    # A second session with another client id takes over the first: both are really VIN_A.
    second = await _connect(
        clients, broker.mqtt_port, "other-id", username=VIN_A, password=password
    )
    assert await second.connect()
    assert await first.wait(first.disconnected)
    log = (broker.out_dir / "mosquitto.log").read_text()
    assert f"as {VIN_A} (" in log
    assert "as not-the-vin" not in log


@pytest.mark.mosquitto
async def test_revoke_disconnects_the_connected_vehicle(
    watching: Broker, clients: list[Client]
) -> None:
    broker = watching
    password = broker.passwords[VIN_A]
    car = await _connect(clients, broker.mqtt_port, VIN_A, username=VIN_A, password=password)
    assert await car.connect()
    started = time.monotonic()
    await broker.registry.revoke(VIN_A)
    assert await car.wait(car.disconnected, 5.0), "revoked vehicle still connected after 5 s"
    assert time.monotonic() - started < 5.0
    again = await _connect(clients, broker.mqtt_port, VIN_A, username=VIN_A, password=password)
    assert not await again.connect()
    # The other car is untouched.
    other = await _connect(
        clients, broker.mqtt_port, VIN_B, username=VIN_B, password=broker.passwords[VIN_B]
    )
    assert await other.connect()


@pytest.mark.mosquitto
async def test_watch_survives_losing_its_listen_connection(
    watching: Broker, clients: list[Client], pool: asyncpg.Pool
) -> None:
    broker = watching
    password = broker.passwords[VIN_A]
    car = await _connect(clients, broker.mqtt_port, VIN_A, username=VIN_A, password=password)
    assert await car.connect()
    killed = await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
    )
    assert killed == 1
    await asyncio.sleep(0.5)  # reconnect (backoff starts at 0.2 s)
    await broker.registry.revoke(VIN_A)
    assert await car.wait(car.disconnected, 5.0)


@pytest.mark.mosquitto
async def test_rotation_replaces_the_secret(watching: Broker, clients: list[Client]) -> None:
    broker = watching
    old = broker.passwords[VIN_A]
    new = (await broker.registry.rotate_secret(VIN_A)).password
    deadline = time.monotonic() + TIMEOUT_S
    while VIN_A not in (broker.out_dir / "passwords").read_text() or await _admitted(
        broker, clients, old
    ):
        assert time.monotonic() < deadline, "old secret still accepted"
        await asyncio.sleep(0.2)
    assert await _admitted(broker, clients, new)


async def _admitted(broker: Broker, clients: list[Client], password: str) -> bool:
    client = await _connect(clients, broker.mqtt_port, VIN_A, username=VIN_A, password=password)
    return await client.connect()


# -- mutual TLS -----------------------------------------------------------------------------------


def _tls_files(
    broker: Broker, name: str, cert_pem: bytes, key_pem: bytes
) -> tuple[Path, Path, Path]:
    directory = broker.out_dir.parent / "clients"
    directory.mkdir(exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return broker.out_dir / "certs" / "ca.crt", cert, key


def _vehicle_tls(
    broker: Broker,
    name: str,
    vin: str,
    *,
    ca: FleetCA | None = None,
    now: datetime = NOW,
    days: int = 30,
) -> tuple[tuple[Path, Path, Path], int]:
    issued = (ca or broker.ca).issue_vehicle_certificate(vin, now=now, validity_days=days)
    assert issued.private_key_pem is not None
    return _tls_files(broker, name, issued.certificate_pem, issued.private_key_pem), issued.serial


async def _record_certificate(pool: asyncpg.Pool, vin: str, serial: int) -> None:
    await pool.execute(
        "INSERT INTO vehicle_certificates (serial, vin, fingerprint_sha256, not_before, not_after)"
        " VALUES ($1, $2, $3, $4, $5)",
        serial,
        vin,
        f"fp-{serial}",
        NOW,
        NOW + timedelta(days=30),
    )


@pytest.mark.mosquitto
async def test_client_certificate_is_the_vehicle_identity(
    broker: Broker, clients: list[Client]
) -> None:
    ingest = await _ingest(broker, clients)
    tls, _ = _vehicle_tls(broker, "a", VIN_A)
    # The CN is the username: a password in CONNECT is ignored and the client id is forced.
    car = await _connect(
        clients, broker.tls_port, "whatever", username=VIN_B, password="x", tls=tls
    )
    assert await car.connect()
    await car.publish(telemetry(VIN_B), b"forged")
    await car.publish(telemetry(VIN_A), b"mtls")
    assert await ingest.wait(ingest.message)
    await asyncio.sleep(0.2)
    assert ingest.messages == [(telemetry(VIN_A), b"mtls")]


@pytest.mark.mosquitto
async def test_foreign_and_expired_certificates_are_refused(
    broker: Broker, clients: list[Client]
) -> None:
    foreign_ca = FleetCA.create(now=NOW - timedelta(days=30))
    foreign, _ = _vehicle_tls(broker, "foreign", VIN_A, ca=foreign_ca)
    assert not await (await _connect(clients, broker.tls_port, VIN_A, tls=foreign)).connect()
    expired, _ = _vehicle_tls(broker, "expired", VIN_A, now=NOW - timedelta(days=10), days=1)
    assert not await (await _connect(clients, broker.tls_port, VIN_A, tls=expired)).connect()
    valid, _ = _vehicle_tls(broker, "valid", VIN_A)
    assert await (await _connect(clients, broker.tls_port, VIN_A, tls=valid)).connect()


@pytest.mark.mosquitto
async def test_revoked_certificate_is_refused_after_the_sync(
    broker: Broker, clients: list[Client], pool: asyncpg.Pool
) -> None:
    tls, serial = _vehicle_tls(broker, "a", VIN_A)
    await _record_certificate(pool, VIN_A, serial)
    assert await (await _connect(clients, broker.tls_port, VIN_A, tls=tls)).connect()

    await pool.execute(
        "UPDATE vehicle_certificates SET revoked_at = $2 WHERE serial = $1", serial, NOW
    )
    await broker.sync_now()
    assert not await (await _connect(clients, broker.tls_port, VIN_A, tls=tls)).connect()
    # Another certificate of the same (still admitted) car works.
    other_tls, _ = _vehicle_tls(broker, "a2", VIN_A)
    assert await (await _connect(clients, broker.tls_port, VIN_A + "-2", tls=other_tls)).connect()


@pytest.mark.mosquitto
async def test_revoked_vehicle_certificate_sessions_are_cut_off(
    broker: Broker, clients: list[Client], pool: asyncpg.Pool
) -> None:
    ingest = await _ingest(broker, clients)
    tls, serial = _vehicle_tls(broker, "a", VIN_A)
    await _record_certificate(pool, VIN_A, serial)
    car = await _connect(clients, broker.tls_port, VIN_A, tls=tls)
    assert await car.connect()

    await broker.registry.revoke(VIN_A)  # the vehicle, not the certificate
    await broker.sync_now()
    # Mosquitto does not re-check certificate sessions on SIGHUP; the ACL mutes this one.
    await car.publish(telemetry(VIN_A), b"after revocation")
    await asyncio.sleep(0.3)
    assert ingest.messages == []
    assert not await (await _connect(clients, broker.tls_port, VIN_A, tls=tls)).connect()


async def test_cli_writes_the_config_and_says_how_to_start_and_reload(
    database_url: str, tmp_path: Path
) -> None:
    fleetlink = Path(sys.executable).with_name("fleetlink")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLINK_")}
    out_dir = tmp_path / "mq"
    argv = [str(fleetlink), "broker", "mosquitto-config", "--out", str(out_dir)]
    argv += ["--service", "svc-ingest:ingest", "--hostname", "broker.example", "--tls-port", "0"]
    result = await asyncio.to_thread(
        subprocess.run,
        argv,
        env={**env, "FLEETLINK_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"mosquitto -c {out_dir.resolve()}/mosquitto.conf" in result.stdout
    assert f"kill -HUP $(cat {out_dir.resolve()}/mosquitto.pid)" in result.stdout
    assert "mqtt://svc-ingest:" in result.stdout
    assert "@broker.example:1883" in result.stdout
    for name in ("passwords", "acl", "services.json", "certs/server.key", "certs/crl.pem"):
        assert (out_dir / name).exists(), name


@pytest.mark.mosquitto
async def test_vehicle_subscriptions_are_confined_to_its_own_commands(
    broker: Broker, clients: list[Client]
) -> None:
    spy = await _connect(
        clients, broker.mqtt_port, VIN_A, username=VIN_A, password=broker.passwords[VIN_A]
    )
    assert await spy.connect()
    for topic_filter in ("#", "v1/vehicles/+/telemetry", f"v1/vehicles/{VIN_B}/commands"):
        await spy.subscribe(topic_filter)  # MQTT 3.1.1: granted, but the ACL delivers nothing
    await spy.subscribe(f"v1/vehicles/{VIN_A}/commands")
    other = await _connect(
        clients, broker.mqtt_port, VIN_B, username=VIN_B, password=broker.passwords[VIN_B]
    )
    assert await other.connect()
    commander = await _connect(
        clients,
        broker.mqtt_port,
        "svc-commands",
        username="svc-commands",
        password=broker.commands_password,
    )
    assert await commander.connect()
    await other.publish(telemetry(VIN_B), b"b-telemetry")
    await commander.publish(f"v1/vehicles/{VIN_B}/commands", b"for-b")
    await commander.publish(f"v1/vehicles/{VIN_A}/commands", b"for-a")
    assert await spy.wait(spy.message)
    await asyncio.sleep(0.3)
    assert spy.messages == [(f"v1/vehicles/{VIN_A}/commands", b"for-a")]


@pytest.mark.mosquitto
@pytest.mark.parametrize("suffix", ["+", "#", "/x", "\x00"])
async def test_unsafe_usernames_are_refused(
    broker: Broker, clients: list[Client], suffix: str
) -> None:
    username = VIN_A + suffix.replace("\\x00", "\x00")
    car = await _connect(
        clients, broker.mqtt_port, VIN_A, username=username, password=broker.passwords[VIN_A]
    )
    assert not await car.connect()


@pytest.mark.mosquitto
@pytest.mark.parametrize("client_id", ["+", "car/#", "a/b"])
async def test_unsafe_client_ids_are_replaced_by_the_vin(
    broker: Broker, clients: list[Client], client_id: str
) -> None:
    """use_username_as_clientid: whatever id a car sends, its session is its VIN's."""
    car = await _connect(
        clients, broker.mqtt_port, client_id, username=VIN_A, password=broker.passwords[VIN_A]
    )
    assert await car.connect()
    await car.subscribe(f"v1/vehicles/{VIN_A}/commands")
    log = (broker.out_dir / "mosquitto.log").read_text()
    assert f"as {client_id} (" not in log and f"as {VIN_A} (" in log
