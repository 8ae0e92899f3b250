"""Keep a Mosquitto broker's files in step with the vehicle registry (I/O, database, signals).

``write_mosquitto_config`` writes the whole configuration once; ``watch`` then LISTENs on the
``vehicle_identity`` channel (api/migrations/002_vehicle_identity.sql) and, after a short
debounce, rewrites the password file, the ACL and the CRL and sends SIGHUP to Mosquitto. On
SIGHUP Mosquitto 2.0 re-reads those files and disconnects password sessions whose entry is gone,
so a revoked car is cut off within about a second. A full resync runs every minute in case a
notification was lost. The rendering itself is pure (``broker.mosquitto``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import secrets
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, TextIO

import asyncpg
from cryptography import x509

from api.vehicle_registry import BrokerCredential, VehicleRegistry
from broker.fleet_ca import FleetCA
from broker.mosquitto import (
    MosquittoLayout,
    TlsListenerLayout,
    check_service_name,
    mosquitto_password_hash,
    render_acl,
    render_config,
    render_password_file,
)
from broker.policy import ServiceRole
from broker.secure_files import PUBLIC_MODE, SECRET_MODE, write_atomically
from fleetlink.database import create_pool

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "vehicle_identity"
DEFAULT_BIND = "127.0.0.1"
DEFAULT_MQTT_PORT = 1883
DEFAULT_TLS_PORT = 8883
DEFAULT_DEBOUNCE_S = 0.3
DEFAULT_RESYNC_INTERVAL_S = 60.0
# The CRL is valid for a week (broker.fleet_ca); rewrite it daily even when nothing changed.
CRL_REFRESH_INTERVAL = timedelta(days=1)
SERVER_CERTIFICATE_RENEW_BEFORE = timedelta(days=30)
_LISTEN_BACKOFF_MAX_S = 5.0
_LISTENER_STOP_TIMEOUT_S = 5.0
_SERVICE_SECRET_BYTES = 32

CONFIG_FILE = "mosquitto.conf"
PASSWD_FILE = "passwords"  # noqa: S105 - a file name, not a secret
ACL_FILE = "acl"
SERVICES_FILE = "services.json"
PID_FILE = "mosquitto.pid"
CERTS_DIR = "certs"
CA_CERT_FILE = "ca.crt"
SERVER_CERT_FILE = "server.crt"
SERVER_KEY_FILE = "server.key"
CRL_FILE = "crl.pem"
DATA_DIR = "data"
DEFAULT_CA_DIR = "ca"
_SECRET_MODE = SECRET_MODE
_PUBLIC_MODE = PUBLIC_MODE


class MosquittoSyncError(RuntimeError):
    code = "mosquitto_sync_error"

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class MosquittoPidFileError(MosquittoSyncError):
    """Mosquitto cannot be told to reload: no pid file, garbage in it, or no such process."""

    code = "mosquitto_pid_missing"

    def __init__(self, message: str, *, path: Path, code: str | None = None) -> None:
        super().__init__(message, path=path)
        if code is not None:
            self.code = code


class ServiceSpecError(MosquittoSyncError):
    code = "mosquitto_service_invalid"

    def __init__(self, message: str, *, spec: str) -> None:
        super().__init__(message)
        self.spec = spec


class ServicesFileError(MosquittoSyncError):
    code = "mosquitto_services_file_invalid"


def parse_service(spec: str) -> tuple[str, frozenset[ServiceRole]]:
    """``NAME:ROLE[+ROLE]`` (``svc-ingest:ingest``, ``svc-ota:commander+presence``)."""
    name, sep, roles_text = spec.partition(":")
    if not sep or not roles_text:
        raise ServiceSpecError(f"service {spec!r} is not NAME:ROLE[+ROLE]", spec=spec)
    try:
        check_service_name(name)
        roles = frozenset(ServiceRole(r) for r in roles_text.split("+"))
    except ValueError as exc:
        allowed = ", ".join(r.value for r in ServiceRole)
        raise ServiceSpecError(f"service {spec!r}: {exc} (roles: {allowed})", spec=spec) from exc
    return name, roles


@dataclass(frozen=True, slots=True)
class MosquittoOptions:
    bind: str = DEFAULT_BIND
    mqtt_port: int = DEFAULT_MQTT_PORT
    tls_port: int | None = DEFAULT_TLS_PORT  # None: no TLS listener
    services: Mapping[str, frozenset[ServiceRole]] = field(default_factory=dict)
    hostnames: tuple[str, ...] = ()  # server certificate SANs (besides the bind address)
    ca_dir: Path | None = None  # the fleet CA; default OUT_DIR/ca
    run_as_user: str | None = None  # Mosquitto's `user`


@dataclass(frozen=True, slots=True)
class IdentitySnapshot:
    """Everything Mosquitto needs from the database, read at one moment."""

    credentials: Sequence[BrokerCredential]
    revoked_certificates: Sequence[tuple[int, datetime]]
    revoked_vins: Sequence[str]  # revoked vehicles that hold certificates


class IdentitySource(Protocol):
    async def snapshot(self) -> IdentitySnapshot: ...


class FleetIdentity:
    """The registry plus the certificate table, and a connection for LISTEN."""

    def __init__(self, pool: asyncpg.Pool, registry: VehicleRegistry | None = None) -> None:
        self.pool = pool
        self._registry = registry or VehicleRegistry(pool)

    async def snapshot(self) -> IdentitySnapshot:
        try:
            return await self._snapshot()
        except asyncpg.UndefinedTableError as exc:
            raise MosquittoSyncError(
                f"the database is not migrated ({exc}); run `fleetlink migrate` first"
            ) from exc

    async def _snapshot(self) -> IdentitySnapshot:
        credentials = await self._registry.broker_credentials()
        # A certificate is dead when it is revoked itself or its vehicle is: with
        # use_identity_as_username Mosquitto never looks at the password file for it.
        rows = await self.pool.fetch(
            "SELECT c.serial, coalesce(c.revoked_at, v.revoked_at) AS revoked_at"
            " FROM vehicle_certificates c JOIN vehicles v USING (vin)"
            " WHERE c.revoked_at IS NOT NULL OR v.revoked_at IS NOT NULL ORDER BY c.serial"
        )
        vins = await self.pool.fetch(
            "SELECT DISTINCT v.vin FROM vehicles v JOIN vehicle_certificates c USING (vin)"
            " WHERE v.revoked_at IS NOT NULL ORDER BY v.vin"
        )
        return IdentitySnapshot(
            credentials=credentials,
            revoked_certificates=[(int(r["serial"]), r["revoked_at"]) for r in rows],
            revoked_vins=[r["vin"] for r in vins],
        )


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    name: str
    roles: frozenset[ServiceRole]
    password: str
    mosquitto_hash: str


@dataclass(frozen=True, slots=True)
class WrittenConfig:
    out_dir: Path
    config_file: Path
    pid_file: Path
    files: tuple[Path, ...]
    vehicles: int
    revoked_certificates: int
    tls: bool
    new_service_urls: tuple[str, ...]  # mqtt://NAME:SECRET@host:port, only for new accounts

    @property
    def start_command(self) -> str:
        return f"mosquitto -c {self.config_file}"

    @property
    def reload_command(self) -> str:
        return f"kill -HUP $(cat {self.pid_file})"


@dataclass
class SyncState:
    """What the broker was last told, so the periodic resync only reloads on real changes."""

    fingerprint: tuple[str, str, tuple[int, ...]] | None = None
    crl_written_at: datetime | None = None


# -- files ----------------------------------------------------------------------------------------


def _load_services(path: Path) -> dict[str, ServiceAccount]:
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {
            name: ServiceAccount(
                name=check_service_name(name),
                roles=frozenset(ServiceRole(r) for r in entry["roles"]),
                password=str(entry["password"]),
                mosquitto_hash=str(entry["mosquitto_hash"]),
            )
            for name, entry in raw.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ServicesFileError(
            f"{path} is not a FleetLink services file: {exc}", path=path
        ) from exc


def _save_services(path: Path, accounts: Mapping[str, ServiceAccount]) -> None:
    data = {
        a.name: {
            "roles": sorted(r.value for r in a.roles),
            "password": a.password,
            "mosquitto_hash": a.mosquitto_hash,
        }
        for a in sorted(accounts.values(), key=lambda a: a.name)
    }
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode(), mode=_SECRET_MODE)


def _merge_services(
    existing: dict[str, ServiceAccount], wanted: Mapping[str, frozenset[ServiceRole]]
) -> tuple[dict[str, ServiceAccount], list[ServiceAccount]]:
    """Existing accounts keep their secret (roles follow ``wanted``); new ones get a secret."""
    merged = dict(existing)
    created: list[ServiceAccount] = []
    for name, roles in sorted(wanted.items()):
        check_service_name(name)
        old = existing.get(name)
        if old is not None:
            merged[name] = ServiceAccount(name, roles, old.password, old.mosquitto_hash)
            continue
        password = secrets.token_urlsafe(_SERVICE_SECRET_BYTES)
        account = ServiceAccount(name, roles, password, mosquitto_password_hash(password))
        merged[name] = account
        created.append(account)
    return merged, created


def _server_certificate_is_current(cert_path: Path, ca: FleetCA, now: datetime) -> bool:
    if not cert_path.exists() or not cert_path.with_name(SERVER_KEY_FILE).exists():
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return False
    return (
        cert.issuer == ca.certificate.subject
        and cert.not_valid_after_utc - SERVER_CERTIFICATE_RENEW_BEFORE > now
    )


def _server_names(options: MosquittoOptions) -> tuple[list[str], list[str]]:
    hostnames = list(options.hostnames) or ["localhost"]
    ips = {"127.0.0.1"}
    try:
        bind_ip = ipaddress.ip_address(options.bind)
    except ValueError:
        hostnames.append(options.bind)
    else:
        if not bind_ip.is_unspecified:
            ips.add(str(bind_ip))
    return sorted(set(hostnames)), sorted(ips)


@dataclass(frozen=True, slots=True)
class _Paths:
    out_dir: Path

    @property
    def config(self) -> Path:
        return self.out_dir / CONFIG_FILE

    @property
    def passwords(self) -> Path:
        return self.out_dir / PASSWD_FILE

    @property
    def acl(self) -> Path:
        return self.out_dir / ACL_FILE

    @property
    def services(self) -> Path:
        return self.out_dir / SERVICES_FILE

    @property
    def pid(self) -> Path:
        return self.out_dir / PID_FILE

    @property
    def certs(self) -> Path:
        return self.out_dir / CERTS_DIR

    @property
    def crl(self) -> Path:
        return self.certs / CRL_FILE


def _paths_in(out_dir: Path) -> _Paths:
    # Absolute: Mosquitto resolves relative paths against its working directory.
    return _Paths(out_dir.resolve())


def _make_directories(paths: _Paths) -> None:
    paths.out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (paths.out_dir / DATA_DIR).mkdir(exist_ok=True, mode=0o700)


def _layout(paths: _Paths, options: MosquittoOptions) -> MosquittoLayout:
    tls = None
    if options.tls_port is not None:
        tls = TlsListenerLayout(
            port=options.tls_port,
            cafile=paths.certs / CA_CERT_FILE,
            certfile=paths.certs / SERVER_CERT_FILE,
            keyfile=paths.certs / SERVER_KEY_FILE,
            crlfile=paths.crl,
        )
    return MosquittoLayout(
        bind=options.bind,
        mqtt_port=options.mqtt_port,
        password_file=paths.passwords,
        acl_file=paths.acl,
        persistence_location=paths.out_dir / DATA_DIR,
        pid_file=paths.pid,
        tls=tls,
        run_as_user=options.run_as_user,
    )


def _load_ca(out_dir: Path, options: MosquittoOptions, now: datetime) -> FleetCA:
    return FleetCA.load_or_create(options.ca_dir or out_dir / DEFAULT_CA_DIR, now=now)


# -- one-shot write -------------------------------------------------------------------------------


async def write_mosquitto_config(
    source: IdentitySource, out_dir: Path, options: MosquittoOptions, *, now: datetime
) -> WrittenConfig:
    """Write every file Mosquitto needs into ``out_dir`` (secrets mode 0600)."""
    paths = _paths_in(out_dir)
    await asyncio.to_thread(_make_directories, paths)
    existing = await asyncio.to_thread(_load_services, paths.services)
    accounts, created = _merge_services(existing, options.services)
    await asyncio.to_thread(_save_services, paths.services, accounts)
    written = [paths.services]

    if options.tls_port is not None:
        written += await asyncio.to_thread(_write_certificates, paths, options, now)
    snapshot = await source.snapshot()
    written += await asyncio.to_thread(_write_credentials, paths, options, accounts, snapshot, now)
    config = render_config(_layout(paths, options)).encode()
    await asyncio.to_thread(write_atomically, paths.config, config, mode=_PUBLIC_MODE)
    written.append(paths.config)

    host = options.hostnames[0] if options.hostnames else options.bind
    urls = tuple(f"mqtt://{a.name}:{a.password}@{host}:{options.mqtt_port}" for a in created)
    log.info(
        "mosquitto configuration written",
        extra={"out_dir": str(paths.out_dir), "vehicles": len(snapshot.credentials)},
    )
    return WrittenConfig(
        out_dir=paths.out_dir,
        config_file=paths.config,
        pid_file=paths.pid,
        files=tuple(written),
        vehicles=len(snapshot.credentials),
        revoked_certificates=len(snapshot.revoked_certificates),
        tls=options.tls_port is not None,
        new_service_urls=urls,
    )


def _write_certificates(paths: _Paths, options: MosquittoOptions, now: datetime) -> list[Path]:
    ca = _load_ca(paths.out_dir, options, now)
    ca_path = paths.certs / CA_CERT_FILE
    write_atomically(ca_path, ca.certificate_pem, mode=_PUBLIC_MODE)
    cert_path = paths.certs / SERVER_CERT_FILE
    key_path = paths.certs / SERVER_KEY_FILE
    if not _server_certificate_is_current(cert_path, ca, now):
        hostnames, ips = _server_names(options)
        cert_pem, key_pem = ca.issue_server_certificate(
            hostnames=hostnames, ip_addresses=ips, now=now
        )
        write_atomically(key_path, key_pem, mode=_SECRET_MODE)
        write_atomically(cert_path, cert_pem, mode=_PUBLIC_MODE)
    return [ca_path, cert_path, key_path]


def _write_credentials(
    paths: _Paths,
    options: MosquittoOptions,
    accounts: Mapping[str, ServiceAccount],
    snapshot: IdentitySnapshot,
    now: datetime,
) -> list[Path]:
    passwords = render_password_file(
        [(a.name, a.mosquitto_hash) for a in accounts.values()]
        + [(c.vin, c.mosquitto_hash) for c in snapshot.credentials]
    )
    acl = render_acl(
        {a.name: a.roles for a in accounts.values()}, revoked_vins=snapshot.revoked_vins
    )
    write_atomically(paths.passwords, passwords.encode(), mode=_SECRET_MODE)
    write_atomically(paths.acl, acl.encode(), mode=_PUBLIC_MODE)
    written = [paths.passwords, paths.acl]
    if options.tls_port is not None:
        ca = _load_ca(paths.out_dir, options, now)
        crl = ca.certificate_revocation_list(snapshot.revoked_certificates, now=now)
        write_atomically(paths.crl, crl, mode=_PUBLIC_MODE)
        written.append(paths.crl)
    return written


# -- incremental sync and reload ------------------------------------------------------------------


async def sync_credentials(
    source: IdentitySource,
    out_dir: Path,
    options: MosquittoOptions,
    state: SyncState,
    *,
    now: datetime,
) -> bool:
    """Rewrite passwords, ACL and CRL from the database; True when the broker must reload."""
    paths = _paths_in(out_dir)
    accounts = await asyncio.to_thread(_load_services, paths.services)
    snapshot = await source.snapshot()
    fingerprint = (
        "\n".join(f"{c.vin}:{c.mosquitto_hash}" for c in snapshot.credentials),
        ",".join(snapshot.revoked_vins),
        tuple(serial for serial, _ in snapshot.revoked_certificates),
    )
    crl_due = state.crl_written_at is None or now - state.crl_written_at >= CRL_REFRESH_INTERVAL
    if fingerprint == state.fingerprint and not (options.tls_port is not None and crl_due):
        return False
    await asyncio.to_thread(_write_credentials, paths, options, accounts, snapshot, now)
    state.fingerprint = fingerprint
    state.crl_written_at = now
    return True


def reload_mosquitto(pid_file: Path) -> int:
    """SIGHUP to the pid in ``pid_file``: Mosquitto re-reads the password file, ACL and CRL and
    disconnects sessions whose credentials are gone. Returns the pid."""
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError as exc:
        raise MosquittoPidFileError(
            f"{pid_file} does not exist: is mosquitto running with this configuration?",
            path=pid_file,
        ) from exc
    try:
        pid = int(text)
    except ValueError:
        pid = 0
    if pid <= 1:
        raise MosquittoPidFileError(
            f"{pid_file} holds {text!r}, not a pid", path=pid_file, code="mosquitto_pid_invalid"
        )
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as exc:
        raise MosquittoPidFileError(
            f"mosquitto (pid {pid} from {pid_file}) is not running",
            path=pid_file,
            code="mosquitto_not_running",
        ) from exc
    except PermissionError as exc:
        raise MosquittoPidFileError(
            f"not allowed to signal pid {pid} from {pid_file}",
            path=pid_file,
            code="mosquitto_signal_denied",
        ) from exc
    return pid


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _listen_forever(pool: asyncpg.Pool, changed: asyncio.Event, stop: asyncio.Event) -> None:
    """LISTEN on a dedicated connection; after a loss, reconnect and ask for a full resync
    (notifications sent while disconnected are gone)."""
    delay = 0.2
    while not stop.is_set():
        lost = asyncio.Event()

        def on_notify(*_: object) -> None:
            changed.set()

        try:
            conn = await pool.acquire()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("vehicle_identity listener cannot connect: %s", exc)
            await _sleep_unless(stop, delay)
            delay = min(delay * 2, _LISTEN_BACKOFF_MAX_S)
            continue
        try:
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            await conn.add_listener(NOTIFY_CHANNEL, on_notify)
            delay = 0.2
            changed.set()  # catch up on anything missed before (re)connecting
            await _first(lost.wait(), stop.wait())
            if lost.is_set() and not stop.is_set():
                log.warning("vehicle_identity listener connection lost; reconnecting")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("vehicle_identity listener failed: %s", exc)
            await _sleep_unless(stop, delay)
        finally:
            # Release even when UNLISTEN fails or is cancelled: a connection kept out of the
            # pool makes pool.close() wait forever.
            try:
                if not conn.is_closed():
                    await conn.remove_listener(NOTIFY_CHANNEL, on_notify)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("UNLISTEN failed: %s", exc)
            finally:
                with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await pool.release(conn)


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def watch(
    identity: FleetIdentity,
    out_dir: Path,
    options: MosquittoOptions,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = _utc_now,
    debounce_s: float = DEFAULT_DEBOUNCE_S,
    resync_interval_s: float = DEFAULT_RESYNC_INTERVAL_S,
    reload: Callable[[Path], int] = reload_mosquitto,
) -> None:
    """Keep ``out_dir`` (written by :func:`write_mosquitto_config`) in step until ``stop``."""
    paths = _paths_in(out_dir)
    state = SyncState()
    changed = asyncio.Event()
    finished = asyncio.Event()  # ends the listener also when this loop fails
    listener = asyncio.create_task(_listen_forever(identity.pool, changed, finished))
    try:
        while not stop.is_set():
            try:
                if await sync_credentials(identity, out_dir, options, state, now=clock()):
                    pid = reload(paths.pid)
                    log.info("mosquitto reloaded", extra={"pid": pid})
            except MosquittoPidFileError as exc:
                # Files are written; Mosquitto reads them when it starts.
                log.warning("mosquitto not reloaded: %s", exc, extra={"code": exc.code})
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("mosquitto sync failed: %s", exc)
                state.fingerprint = None  # retry the whole sync next round
                changed.set()
                await _sleep_unless(stop, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(changed.wait(), stop.wait()), resync_interval_s)
            if changed.is_set() and not stop.is_set():
                # Coalesce a burst (a CSV import notifies once per car) into one reload.
                await _sleep_unless(stop, debounce_s)
            changed.clear()
    finally:
        finished.set()
        try:
            await asyncio.wait_for(asyncio.shield(listener), _LISTENER_STOP_TIMEOUT_S)
        except TimeoutError:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


# -- the CLI command ------------------------------------------------------------------------------


def print_written(written: WrittenConfig, out: TextIO, *, watching: bool) -> None:
    print(f"Wrote the Mosquitto configuration to {written.out_dir}:", file=out)
    for path in written.files:
        print(f"  {path}", file=out)
    print(
        f"  {written.vehicles} vehicles admitted"
        + (f", {written.revoked_certificates} certificates revoked" if written.tls else ""),
        file=out,
    )
    if written.new_service_urls:
        print(f"New service accounts (also kept in {written.out_dir / SERVICES_FILE}):", file=out)
        for url in written.new_service_urls:
            print(f"  {url}", file=out)
    print(f"Start Mosquitto:  {written.start_command}", file=out)
    print(f"Reload after changes:  {written.reload_command}", file=out)
    if watching:
        print("Watching the vehicle registry; reloading Mosquitto on every change.", file=out)
    out.flush()


async def run_mosquitto_config(
    database_url: str,
    out_dir: Path,
    options: MosquittoOptions,
    out: TextIO,
    *,
    stop: asyncio.Event | None = None,
) -> WrittenConfig:
    """``fleetlink broker mosquitto-config``: write once, then keep in sync while ``stop`` (given
    with --watch) is not set."""
    pool = await create_pool(database_url, min_size=1, max_size=3)
    try:
        identity = FleetIdentity(pool)
        written = await write_mosquitto_config(identity, out_dir, options, now=_utc_now())
        print_written(written, out, watching=stop is not None)
        if stop is not None:
            await watch(identity, out_dir, options, stop)
        return written
    finally:
        await pool.close()
