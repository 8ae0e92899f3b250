"""Machinery of the ingest fault tests (issue 5): a Mosquitto configured like production, a
fleet of QoS 1 publishers that keep every message until PUBACK, and an audit that counts, from
the database, what was lost and what was stored twice.

Everything a test starts is stopped by the fixture (or the test's own ``finally``) through the
handle it was started with; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import asyncpg
import pytest

from broker.mosquitto import (
    MosquittoLayout,
    mosquitto_password_hash,
    render_acl,
    render_config,
    render_password_file,
)
from broker.policy import ServiceRole
from fleetlink.embedded_postgres import free_port
from protocol.topics import telemetry_topic

# -- load shape ---------------------------------------------------------------------------------

VEHICLES = 20
SAMPLES_PER_MESSAGE = 5
SAMPLE_SPACING_MS = 200
# Ten catalogue signals whose ranges all admit the values the fleet sends (1.0 .. 20.4).
SIGNALS = (
    "Vehicle.Speed",
    "Vehicle.TraveledDistance",
    "Vehicle.Acceleration.Longitudinal",
    "Vehicle.Exterior.AirTemperature",
    "Vehicle.Cabin.HVAC.AmbientAirTemperature",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Service.DistanceToService",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
)
PUBLISH_TIMEOUT_S = 5.0


def fleet_vins(count: int = VEHICLES) -> list[str]:
    # 17 characters of the ISO 3779 alphabet (no I, O, Q).
    return [f"WF0RLTST{i:09d}" for i in range(1, count + 1)]


def vehicle_passwords(vins: list[str]) -> dict[str, str]:
    return {vin: f"car-secret-{vin[-6:]}" for vin in vins}


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout_s: float, what: str, poll_s: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if await condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        await asyncio.sleep(poll_s)


# -- Mosquitto ----------------------------------------------------------------------------------


def _mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


@dataclass
class MosquittoServer:
    """Mosquitto with the production configuration (``broker.mosquitto.render_config``):
    persistence, password file, per-VIN ACL, ``use_username_as_clientid``. Restartable on the
    same port; the persistence file carries the sessions across a graceful restart."""

    config_dir: Path
    port: int
    binary: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.config_dir / "mosquitto.log"

    def url(self, username: str, password: str) -> str:
        return f"mqtt://{username}:{password}@127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config_dir / "mosquitto.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Graceful stop (SIGTERM): Mosquitto writes its persistence file on the way out."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def deliveries(self, client_id: str) -> tuple[int, int]:
        """(PUBLISH packets sent to ``client_id``, of which with the DUP flag) from the debug
        log: the broker's own record of what it delivered and redelivered."""
        sent = dup = 0
        prefix = f"Sending PUBLISH to {client_id} ("
        for line in self.log_path.read_text(errors="replace").splitlines():
            at = line.find(prefix)
            if at >= 0:
                sent += 1
                if line[at + len(prefix) :].startswith("d1"):
                    dup += 1
        return sent, dup


def write_mosquitto_files(
    config_dir: Path,
    port: int,
    services: dict[str, str],
    vehicles: dict[str, str],
    *,
    debug_log: bool,
) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    passwords = config_dir / "passwords"
    passwords.write_text(
        render_password_file(
            (user, mosquitto_password_hash(secret))
            for user, secret in {**services, **vehicles}.items()
        )
    )
    acl = config_dir / "acl"
    acl.write_text(render_acl(dict.fromkeys(services, frozenset({ServiceRole.INGEST}))))
    for path in (passwords, acl):
        path.chmod(0o600)
    layout = MosquittoLayout(
        bind="127.0.0.1",
        mqtt_port=port,
        password_file=passwords,
        acl_file=acl,
        persistence_location=config_dir,
        pid_file=config_dir / "mosquitto.pid",
        # The files are the test runner's; as root, do not drop to the mosquitto account.
        run_as_user="root" if os.geteuid() == 0 else None,
    )
    log_types = ["all"] if debug_log else ["error", "warning", "notice"]
    extra = ["log_dest stdout", *(f"log_type {t}" for t in log_types)]
    (config_dir / "mosquitto.conf").write_text(render_config(layout) + "\n".join(extra) + "\n")


MosquittoFactory = Callable[..., MosquittoServer]


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[MosquittoFactory]:
    binary = _mosquitto_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed (.ci/run must install it)")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    started: list[MosquittoServer] = []

    def make(
        services: dict[str, str], vehicles: dict[str, str], *, debug_log: bool = False
    ) -> MosquittoServer:
        port = free_port()
        config_dir = tmp_path / f"mosquitto-{len(started)}"
        write_mosquitto_files(config_dir, port, services, vehicles, debug_log=debug_log)
        server = MosquittoServer(config_dir, port, binary)
        started.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


# -- the fleet ----------------------------------------------------------------------------------


@dataclass
class LoadCar:
    vin: str
    password: str
    # seq -> payload of every message generated; pending: generated, no PUBACK yet.
    messages: dict[int, bytes] = field(default_factory=dict)
    pending: dict[int, bytes] = field(default_factory=dict)
    attempts: Counter[int] = field(default_factory=Counter)
    connects: int = 0
    connection_losses: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class LoadFleet:
    """``VEHICLES`` cars, each publishing one telemetry message per second (QoS 1, persistent
    session) with ``SAMPLES_PER_MESSAGE`` samples of every signal in ``SIGNALS``.

    A car samples on schedule whether or not it is connected, and keeps each message until the
    broker's PUBACK; after a reconnect it republishes every unacknowledged message in order
    (at-least-once, as store-and-forward in ``simulator/car.py``)."""

    def __init__(
        self, port: int, passwords: dict[str, str], *, seconds: float, rate_hz: float = 1.0
    ) -> None:
        self._port = port
        self.cars = [LoadCar(vin, pw) for vin, pw in passwords.items()]
        self.seconds = seconds
        self.rate_hz = rate_hz
        self.t0_ms = time.time_ns() // 1_000_000 - 2_000
        self.generation_done = asyncio.Event()

    # -- what was sent ------------------------------------------------------------------------

    @property
    def vins(self) -> list[str]:
        return [car.vin for car in self.cars]

    @property
    def messages_sent(self) -> int:
        return sum(len(car.messages) for car in self.cars)

    @property
    def samples_sent(self) -> int:
        return self.messages_sent * SAMPLES_PER_MESSAGE

    @property
    def values_sent(self) -> int:
        return self.samples_sent * len(SIGNALS)

    @property
    def unacknowledged(self) -> int:
        return sum(len(car.pending) for car in self.cars)

    @property
    def resends(self) -> int:
        """Publish attempts beyond the first, over all messages."""
        return sum(n - 1 for car in self.cars for n in car.attempts.values() if n > 1)

    @property
    def connects(self) -> int:
        return sum(car.connects for car in self.cars)

    @property
    def connection_losses(self) -> int:
        return sum(car.connection_losses for car in self.cars)

    def sent_keys(self) -> set[tuple[str, str, int]]:
        keys: set[tuple[str, str, int]] = set()
        for car in self.cars:
            for payload in car.messages.values():
                for sample in json.loads(payload)["samples"]:
                    keys.update((car.vin, signal, sample["ts"]) for signal in sample["signals"])
        return keys

    # -- running ------------------------------------------------------------------------------

    def _message(self, index: int) -> bytes:
        base = self.t0_ms + index * 1000
        samples = [
            {
                "ts": base + j * SAMPLE_SPACING_MS,
                "signals": {s: 1.0 + (index % 20) + j / 10 for s in SIGNALS},
            }
            for j in range(SAMPLES_PER_MESSAGE)
        ]
        return json.dumps({"seq": index + 1, "samples": samples}).encode()

    async def run(self) -> None:
        """Generate for ``seconds``, then return once every message is acknowledged (the
        caller bounds this with a timeout)."""
        senders = [asyncio.create_task(self._send(car)) for car in self.cars]
        try:
            await self._generate()
            await asyncio.gather(*senders)
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)

    async def _generate(self) -> None:
        start = time.monotonic()
        count = int(self.seconds * self.rate_hz)
        rng = random.Random(0)
        offsets = {car.vin: rng.uniform(0, 1 / self.rate_hz) for car in self.cars}
        for index in range(count):
            for car in sorted(self.cars, key=lambda c: offsets[c.vin]):
                due = start + index / self.rate_hz + offsets[car.vin]
                await asyncio.sleep(max(due - time.monotonic(), 0))
                payload = self._message(index)
                car.messages[index + 1] = payload
                car.pending[index + 1] = payload
                car.wake.set()
        self.generation_done.set()
        for car in self.cars:
            car.wake.set()

    def _client(self, car: LoadCar) -> aiomqtt.Client:
        return aiomqtt.Client(
            "127.0.0.1",
            self._port,
            identifier=car.vin,
            username=car.vin,
            password=car.password,
            clean_session=False,
            keepalive=10,
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def _send(self, car: LoadCar) -> None:
        while not (self.generation_done.is_set() and not car.pending):
            try:
                async with self._client(car) as client:
                    car.connects += 1
                    while not (self.generation_done.is_set() and not car.pending):
                        if not car.pending:
                            car.wake.clear()
                            await car.wake.wait()
                            continue
                        seq = next(iter(car.pending))
                        car.attempts[seq] += 1
                        await client.publish(
                            telemetry_topic(car.vin),
                            car.pending[seq],
                            qos=1,
                            timeout=PUBLISH_TIMEOUT_S,
                        )
                        del car.pending[seq]  # PUBACK received: the broker has it
            except aiomqtt.MqttError:
                car.connection_losses += 1
                await asyncio.sleep(0.2 + random.random() * 0.3)


# -- the audit ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    messages_sent: int
    samples_sent: int
    values_sent: int
    rows: int
    lost: int  # sent values with no row
    unexpected: int  # rows nobody sent
    duplicate_rows: int  # rows beyond one per (vin, signal, ts)
    duplicate_messages: int  # ingest_sequences.duplicates: redelivered messages seen by ingest
    seq_gaps: int
    dead_letters: int

    def figures(self) -> str:
        return (
            f"sent {self.messages_sent} messages / {self.samples_sent} samples /"
            f" {self.values_sent} values; stored {self.rows} rows; lost {self.lost};"
            f" unexpected {self.unexpected}; duplicate rows {self.duplicate_rows};"
            f" duplicate messages {self.duplicate_messages}; seq gaps {self.seq_gaps};"
            f" dead letters {self.dead_letters}"
        )


async def stored_rows(conn: asyncpg.Connection | asyncpg.Pool, vins: list[str]) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM telemetry_values WHERE vin = ANY($1::text[])", vins
    )
    return count


async def audit(conn: asyncpg.Connection | asyncpg.Pool, fleet: LoadFleet) -> Outcome:
    vins = fleet.vins
    rows = await conn.fetch(
        "SELECT vin, signal, round(extract(epoch FROM ts) * 1000)::bigint AS ts_ms"
        " FROM telemetry_values WHERE vin = ANY($1::text[])",
        vins,
    )
    stored = Counter((r["vin"], r["signal"], r["ts_ms"]) for r in rows)
    sent = fleet.sent_keys()
    sequences = await conn.fetchrow(
        "SELECT coalesce(sum(duplicates), 0)::bigint AS duplicates,"
        " coalesce(sum(gaps), 0)::bigint AS gaps"
        " FROM ingest_sequences WHERE vin = ANY($1::text[])",
        vins,
    )
    dead_letters = await conn.fetchval(
        "SELECT count(*) FROM dead_letters WHERE vin = ANY($1::text[])", vins
    )
    return Outcome(
        messages_sent=fleet.messages_sent,
        samples_sent=fleet.samples_sent,
        values_sent=len(sent),
        rows=len(rows),
        lost=len(sent - stored.keys()),
        unexpected=len(stored.keys() - sent),
        duplicate_rows=sum(n - 1 for n in stored.values()),
        duplicate_messages=sequences["duplicates"],
        seq_gaps=sequences["gaps"],
        dead_letters=dead_letters,
    )


async def wait_all_stored(
    pool: asyncpg.Pool, fleet: LoadFleet, timeout_s: float, *, poll_s: float = 0.5
) -> None:
    """Until every value the fleet sent has a row (the count is a cheap proxy; the audit then
    checks key by key)."""
    expected = fleet.values_sent
    last: list[int | str] = ["none"]

    async def complete() -> bool:
        try:
            count = await stored_rows(pool, fleet.vins)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            last[0] = f"{type(exc).__name__}: {exc}"
            return False
        last[0] = count
        return count >= expected

    try:
        await wait_until(complete, timeout_s, f"{expected} values stored", poll_s)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc} (last count: {last[0]}; cars still waiting for PUBACK: {fleet.unacknowledged})"
        ) from None


# -- a worker as a separate process -------------------------------------------------------------


def fleetlink_command() -> list[str]:
    script = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "fleetlink"
    for candidate in (script, Path(__file__).resolve().parents[2] / ".venv" / "bin" / "fleetlink"):
        if candidate.is_file():
            return [str(candidate)]
    found = shutil.which("fleetlink")
    assert found is not None, "the fleetlink console script is not installed"
    return [found]


@dataclass
class WorkerProcess:
    """``fleetlink serve ingest`` in its own process (own session: our signals only)."""

    env: dict[str, str]
    log_path: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*fleetlink_command(), "serve", "ingest"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def metric(self, name: str) -> float | None:
        """One sample of the worker's Prometheus page (``None``: not served / not found)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_subscribed(self, count: int, timeout_s: float = 30.0) -> None:
        async def subscribed() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()[-3000:]}")
            return self.log().count("ingest: subscribed to telemetry") >= count

        await wait_until(subscribed, timeout_s, "worker subscribed", poll_s=0.1)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        return process.returncode
