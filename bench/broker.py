"""The broker a benchmark drives its load through: Mosquitto with the production configuration
(``broker.mosquitto.render_config``: password file, per-VIN ACL, ``use_username_as_clientid``,
``max_inflight_messages``) when the binary is installed, else FleetLink's embedded amqtt.

amqtt runs inside the benchmark process, so it shares the ingest event loop; the figures of such
a run are a lower bound and the report says which broker was used.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker
from broker.mosquitto import (
    MosquittoLayout,
    mosquitto_password_hash,
    render_acl,
    render_config,
    render_password_file,
)
from broker.policy import Identity, ServiceIdentity, ServiceRole, VehicleIdentity
from fleetlink.embedded_postgres import free_port
from protocol.vin import Vin

HOST = "127.0.0.1"
INGEST_USER = "svc-bench-ingest"
START_TIMEOUT_S = 10.0


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


@dataclass
class StaticVehicles:
    """Vehicle credentials for the embedded broker: VIN -> password."""

    passwords: dict[str, str] = field(default_factory=dict)

    async def verify(self, username: str, password: str) -> Identity | None:
        if self.passwords.get(username) == password:
            return VehicleIdentity(Vin(username))
        return None


@dataclass
class BenchBroker:
    """One broker on a free loopback port. ``start``/``stop`` are idempotent."""

    workdir: Path
    ingest_password: str
    vehicles: dict[str, str]
    # One account per ingest worker: the broker uses the username as the client id.
    ingest_users: tuple[str, ...] = (INGEST_USER,)
    kind: str = ""  # "mosquitto" or "amqtt", decided at start
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _embedded: EmbeddedBroker | None = None

    @property
    def pid(self) -> int | None:
        """The Mosquitto process (None with the in-process amqtt)."""
        return self.process.pid if self.process is not None else None

    async def start(self, *, prefer_mosquitto: bool = True) -> None:
        self.port = free_port(HOST)
        binary = mosquitto_binary() if prefer_mosquitto else None
        if binary is not None:
            self.kind = "mosquitto"
            self._start_mosquitto(binary)
            return
        self.kind = "amqtt"
        services = ServiceAccounts(
            {
                user: (
                    self.ingest_password,
                    ServiceIdentity(user, frozenset({ServiceRole.INGEST})),
                )
                for user in self.ingest_users
            }
        )
        self._embedded = EmbeddedBroker(
            FirstMatch([services, StaticVehicles(self.vehicles)]), host=HOST, port=self.port
        )
        await self._embedded.start()

    def _start_mosquitto(self, binary: str) -> None:
        config_dir = self.workdir / "mosquitto"
        config_dir.mkdir(parents=True, exist_ok=True)
        passwords = config_dir / "passwords"
        accounts = {**dict.fromkeys(self.ingest_users, self.ingest_password), **self.vehicles}
        passwords.write_text(
            render_password_file(
                (user, mosquitto_password_hash(secret)) for user, secret in accounts.items()
            )
        )
        acl = config_dir / "acl"
        acl.write_text(
            render_acl(dict.fromkeys(self.ingest_users, frozenset({ServiceRole.INGEST})))
        )
        for path in (passwords, acl):
            path.chmod(0o600)
        layout = MosquittoLayout(
            bind=HOST,
            mqtt_port=self.port,
            password_file=passwords,
            acl_file=acl,
            persistence_location=config_dir,
            pid_file=config_dir / "mosquitto.pid",
            # The files are ours; started as root, Mosquitto must not drop to another account.
            run_as_user="root" if os.geteuid() == 0 else None,
        )
        extra = "log_dest stdout\nlog_type error\nlog_type warning\n"
        (config_dir / "mosquitto.conf").write_text(render_config(layout) + extra)
        log_path = config_dir / "mosquitto.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the installed binary, our config
                [binary, "-c", str(config_dir / "mosquitto.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection((HOST, self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop_process()
        raise RuntimeError("mosquitto did not start listening")

    def stop_process(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    async def stop(self) -> None:
        self.stop_process()
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            await embedded.stop()
