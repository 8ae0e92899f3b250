"""``fleetlink up``: the whole stack in one process on one machine.

Start order: PostgreSQL -> migrations -> broker -> ingest -> API -> simulated fleet.
Stop order is the reverse, so that nothing in flight is lost: the cars hand over what they have
sampled, ingest commits and acknowledges what it holds, then the API, the broker and finally
the database stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.offers.seed import seed_offers
from api.service.seed import seed_service_network
from api.settings import ApiSettings
from api.vehicle_registry import VehicleRegistry
from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker, TlsListener
from broker.fleet_ca import CA_CERTIFICATE_FILE, FleetCA
from broker.policy import ServiceIdentity, ServiceRole
from broker.secure_files import PUBLIC_MODE, write_atomically
from fleetlink.data_dir import DataDirLock
from fleetlink.database import create_pool
from fleetlink.diagnostics_runtime import build_diagnostics, prune_outbox_periodically
from fleetlink.embedded_postgres import EmbeddedPostgres, PostgresOptions
from fleetlink.fleet_file import save_sequence_numbers
from fleetlink.identity_watch import IdentityWatch
from fleetlink.migrations import migrate
from fleetlink.ota_runtime import (
    OTA_SERVICE,
    fleet_ota,
    register_ecu_keys,
    rollout_scheduler,
    root_v1,
    start_director,
)
from fleetlink.platform_services import NOTIFIER_SERVICE, platform_services
from fleetlink.provisioning import provision_fleet
from ingest.consumer import IngestWorker
from ingest.location_consent import LocationConsent
from ingest.metrics import build_registry
from ingest.settings import IngestSettings
from ingest.store import TelemetryStore
from ota.ceremony import ensure_initialized
from ota.director import Director
from ota.entitlements.keys import EntitlementKeys
from ota.entitlements.push import EntitlementPusher
from ota.service import OtaService
from ota.settings import OtaSettings
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms
from protocol.endpoint import MqttEndpoint
from protocol.entitlements import trusted_keys_from_hex
from simulator.onboard import OnboardOptions
from simulator.runner import FleetRunner

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(".fleetlink")
DEFAULT_VEHICLES = 25
DEFAULT_SEED = 1
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name, not a secret
FLEET_FILE = "fleet.json"
CA_DIR = "ca"
OTA_DIR = "ota"
OTA_OFFLINE_ROOT_DIR = "ota-offline-root"
INGEST_SERVICE = "svc-ingest"
STOP_FLEET_TIMEOUT_S = 15.0
STOP_INGEST_TIMEOUT_S = 20.0
PROGRESS_INTERVAL_S = 30.0
INGEST_QUIET_S = 0.5


@dataclass
class UpOptions:
    data_dir: Path = DEFAULT_DATA_DIR
    vehicles: int = DEFAULT_VEHICLES
    seed: int = DEFAULT_SEED
    host: str = "127.0.0.1"
    mqtt_port: int = 1883
    api_port: int = 8000
    db_port: int = 0  # 0: any free port
    db_fsync: bool = True
    mqtt_tls_port: int | None = None  # mutual-TLS listener for certificate-authenticated cars
    publish_interval_s: float = 5.0
    ingest: IngestSettings = field(default_factory=IngestSettings)


@dataclass
class RunningStack:
    """What ``embedded_stack`` yields: addresses, the admin token and live components."""

    api_url: str
    mqtt_url: str
    database_url: str
    admin_token: str
    admin_token_file: Path
    ingest: IngestWorker
    fleet: FleetRunner | None
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    ca_certificate: Path
    mqtt_tls_url: str | None = None


def _utcnow(clock: Clock) -> datetime:
    return utc_from_ms(clock.now_ms())


def _tls_listener(fleet_ca: FleetCA, options: UpOptions, clock: Clock) -> TlsListener | None:
    """The broker's server certificate, issued afresh at each start by the fleet CA."""
    if options.mqtt_tls_port is None:
        return None
    directory = options.data_dir / CA_DIR
    certificate, key = fleet_ca.issue_server_certificate(
        hostnames=["localhost"], ip_addresses=[options.host], now=_utcnow(clock)
    )
    paths = directory / "broker.crt", directory / "broker.key", directory / CA_CERTIFICATE_FILE
    write_atomically(paths[0], certificate, mode=PUBLIC_MODE)
    write_atomically(paths[1], key)
    return TlsListener(options.mqtt_tls_port, *paths)


def load_or_create_admin_token(data_dir: Path) -> str:
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    write_atomically(path, (token + "\n").encode())
    return token


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn, minus its signal handlers: the runtime owns SIGINT/SIGTERM and decides the
    shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


async def _stop_task(task: asyncio.Task[None], timeout_s: float, what: str) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout_s)
    except TimeoutError:
        log.warning("%s did not stop within %.0f s; cancelling", what, timeout_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    except Exception:
        log.exception("%s failed while stopping", what)


async def _until_quiet(worker: IngestWorker, quiet_s: float, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        seen = worker.stats.messages
        await asyncio.sleep(quiet_s)
        if worker.stats.messages == seen and worker.stats.queue_depth == 0:
            return
    log.warning("ingest still receiving after %.0f s; stopping it anyway", timeout_s)


def _background(
    stack: contextlib.AsyncExitStack,
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    what: str,
    timeout_s: float,
    *,
    before_stop: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> asyncio.Task[None]:
    """Start ``run(stop)`` as a task that the exit stack stops (and waits for) on the way out."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop), name=what)

    async def _stop() -> None:
        if before_stop is not None:
            await before_stop()
        stop.set()
        await _stop_task(task, timeout_s, what)

    stack.push_async_callback(_stop)
    return task


async def _start_postgres(stack: contextlib.AsyncExitStack, options: UpOptions) -> EmbeddedPostgres:
    postgres = EmbeddedPostgres(
        options.data_dir,
        PostgresOptions(host=options.host, port=options.db_port, fsync=options.db_fsync),
    )
    # The start runs in a thread that a cancelled start-up (Ctrl-C) cannot interrupt, so the
    # stop waits for it to finish: a half-started server is stopped, never orphaned.
    starting = asyncio.ensure_future(asyncio.to_thread(postgres.start))

    async def stop() -> None:
        with contextlib.suppress(Exception):
            await starting
        await asyncio.to_thread(postgres.stop)

    stack.push_async_callback(stop)
    await asyncio.shield(starting)
    return postgres


async def _start_api(stack: contextlib.AsyncExitStack, options: UpOptions, app: FastAPI) -> None:
    server = _EmbeddedUvicorn(
        uvicorn.Config(
            app,
            host=options.host,
            port=options.api_port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )

    async def serve(stop: asyncio.Event) -> None:
        serving = asyncio.create_task(server.serve())
        await asyncio.wait(
            [serving, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED"
        )
        # uvicorn waits for open connections before the lifespan's shutdown: end the SSE
        # streams first, or they hold the shutdown for the whole grace period.
        state = getattr(app.state, "fleetlink", None)  # absent if the start-up failed
        if state is not None:
            await state.notification_hub.close()
        server.should_exit = True
        await serving

    task = _background(stack, serve, "API server", 10)
    while not server.started:
        if task.done():
            task.result()  # e.g. the port is taken: raise that error here
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class _Ota:
    service: OtaService
    director: Director
    entitlement_keys: EntitlementKeys


async def _start_ota(
    stack: contextlib.AsyncExitStack,
    pool: asyncpg.Pool,
    options: UpOptions,
    clock: Clock,
    *,
    commands: MqttEndpoint,
    rollouts: MqttEndpoint,
) -> _Ota:
    """The image repository and the director (created on first start), their metadata
    refresh, the entitlement push (``commands``: a commander account) and the rollout
    scheduler (``rollouts``: a commander that also reads ``ota/status``)."""
    settings = OtaSettings().model_copy(update={"data_dir": options.data_dir / OTA_DIR})
    service = OtaService(pool, settings, clock=clock)
    # The root keys stay out of the server's key directory: a sibling the server never reads,
    # which an operator moves offline (docs/ota.md).
    await ensure_initialized(
        service.repository, settings, options.data_dir / OTA_OFFLINE_ROOT_DIR, _utcnow(clock)
    )
    _background(stack, service.run, "OTA metadata refresh", 5)
    entitlement_keys = EntitlementKeys(settings.keys_dir)
    await asyncio.to_thread(entitlement_keys.ensure)  # the first key, at first start
    pusher = EntitlementPusher.from_settings(pool, settings.keys_dir, commands, clock=clock)
    _background(stack, pusher.run, "entitlement push", 5)
    director = await start_director(pool, service, options.data_dir, _utcnow(clock))
    _background(stack, rollout_scheduler(pool, rollouts, clock).run, "OTA rollouts", 10)
    return _Ota(service, director, entitlement_keys)


async def _start_fleet(
    stack: contextlib.AsyncExitStack,
    pool: asyncpg.Pool,
    options: UpOptions,
    registry: VehicleRegistry,
    broker_url: MqttEndpoint,
    *,
    ota: _Ota,
    clock: Clock,
) -> FleetRunner | None:
    if options.vehicles <= 0:
        return None
    members = await provision_fleet(
        registry, options.data_dir / FLEET_FILE, options.vehicles, options.seed
    )
    await register_ecu_keys(pool, members, options.seed, _utcnow(clock))
    cars_ota = stack.enter_context(
        fleet_ota(
            members,
            seed=options.seed,
            api_url=f"http://{options.host}:{options.api_port}",
            roots=await root_v1(ota.director, ota.service),
        )
    )
    onboard = OnboardOptions(
        # The entitlement keys and the OTA roots are pinned in each car, as at the end of
        # the line.
        entitlement_keys=trusted_keys_from_hex(ota.entitlement_keys.trusted_keys()),
        setup=cars_ota.setup(),
    )
    fleet = FleetRunner(
        members,
        broker_url,
        clock,
        seed=options.seed,
        publish_interval_s=options.publish_interval_s,
        onboard=onboard,
    )
    # Registered before the fleet's stop, so it runs after it: the final seq values.
    stack.callback(
        lambda: save_sequence_numbers(options.data_dir / FLEET_FILE, fleet.sequence_numbers())
    )
    _background(stack, fleet.run, "simulated fleet", STOP_FLEET_TIMEOUT_S)
    return fleet


@contextlib.asynccontextmanager
async def embedded_stack(
    options: UpOptions, *, clock: Clock = SYSTEM_CLOCK
) -> AsyncIterator[RunningStack]:
    options.data_dir = options.data_dir.resolve()
    options.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(DataDirLock(options.data_dir))
        postgres = await _start_postgres(stack, options)
        # Listeners (outbox consumers, identity watch, offers config, SSE hub) hold about 8.
        pool = await create_pool(postgres.dsn("postgres"), max_size=20)
        stack.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            applied = await migrate(conn)
            # Service centres, warranty terms and recalls to click through in /docs.
            await seed_service_network(conn, now=_utcnow(clock))
            await seed_offers(conn, now=_utcnow(clock))
        log.info("database ready (%d migrations applied)", applied)

        ingest_secret = secrets.token_urlsafe(24)  # process-local: both ends live here
        ingest_identity = ServiceIdentity(INGEST_SERVICE, frozenset({ServiceRole.INGEST}))
        notifier_secret = secrets.token_urlsafe(24)
        notifier_identity = ServiceIdentity(NOTIFIER_SERVICE, frozenset({ServiceRole.COMMANDER}))
        ota_secret = secrets.token_urlsafe(24)
        # The rollout scheduler sends offers and reads the cars' ota/status reports.
        ota_identity = ServiceIdentity(
            OTA_SERVICE, frozenset({ServiceRole.COMMANDER, ServiceRole.INGEST})
        )
        services = ServiceAccounts(
            {
                INGEST_SERVICE: (ingest_secret, ingest_identity),
                NOTIFIER_SERVICE: (notifier_secret, notifier_identity),
                OTA_SERVICE: (ota_secret, ota_identity),
            }
        )
        fleet_ca = FleetCA.load_or_create(options.data_dir / CA_DIR, now=_utcnow(clock))
        registry = VehicleRegistry(pool, ca_certificate_pem=fleet_ca.certificate_pem, clock=clock)
        broker = EmbeddedBroker(
            FirstMatch([services, registry]),
            host=options.host,
            port=options.mqtt_port,
            tls=_tls_listener(fleet_ca, options, clock),
            certificates=registry,
        )
        await broker.start()
        stack.push_async_callback(broker.stop)
        broker_url = MqttEndpoint(options.host, options.mqtt_port)
        watch = IdentityWatch(postgres.dsn("postgres"), registry, broker)
        _background(stack, watch.run, "identity watch", 5)
        await asyncio.wait_for(watch.listening.wait(), 30)

        diagnostics = build_diagnostics(pool, clock=clock)
        await diagnostics.stream.restore()
        _background(stack, diagnostics.stream.run, "diagnostics stream rules", 10)
        _background(stack, diagnostics.offers.run, "offers engine", 10)
        worker = IngestWorker(
            TelemetryStore(pool, timeout_s=options.ingest.commit_timeout_ms / 1000),
            broker_url.with_credentials(INGEST_SERVICE, ingest_secret),
            options.ingest,
            clock=clock,
            consent=LocationConsent(pool),
            on_commit=diagnostics.feed,
        )
        _background(
            stack,
            worker.run,
            "ingest",
            STOP_INGEST_TIMEOUT_S,
            # The embedded broker keeps sessions in memory only: let ingest take everything
            # the cars handed over before it stops, or it would be gone with the broker.
            before_stop=lambda: _until_quiet(worker, INGEST_QUIET_S, STOP_INGEST_TIMEOUT_S),
        )
        await asyncio.wait_for(worker.subscribed.wait(), 30)
        _background(stack, diagnostics.trend.run, "diagnostics trend pass", 30)
        commands = broker_url.with_credentials(NOTIFIER_SERVICE, notifier_secret)
        for service in platform_services(pool, commands_mqtt=commands, clock=clock):
            _background(stack, service.run, service.name, service.stop_timeout_s)
        _background(
            stack, lambda stop: prune_outbox_periodically(pool, stop, clock=clock), "outbox", 5
        )

        admin_token = load_or_create_admin_token(options.data_dir)
        api_settings = ApiSettings(
            host=options.host, port=options.api_port, admin_token=admin_token
        )
        # One process runs ingest, broker and API: /metrics shows all of them.
        metrics = build_registry(worker.stats, denials=broker.denials)
        ota = await _start_ota(
            stack,
            pool,
            options,
            clock,
            commands=commands,
            rollouts=broker_url.with_credentials(OTA_SERVICE, ota_secret),
        )
        app = create_app(
            api_settings,
            mqtt=broker_url,
            database=pool,
            fleet_ca=fleet_ca,
            metrics=metrics,
            ota=ota.service,
        )
        await _start_api(stack, options, app)

        fleet = await _start_fleet(stack, pool, options, registry, broker_url, ota=ota, clock=clock)

        yield RunningStack(
            api_url=f"http://{options.host}:{options.api_port}",
            mqtt_url=str(broker_url),
            database_url=postgres.dsn("postgres").replace(postgres.password, "***"),
            admin_token=admin_token,
            admin_token_file=options.data_dir / ADMIN_TOKEN_FILE,
            ingest=worker,
            fleet=fleet,
            postgres=postgres,
            broker=broker,
            ca_certificate=options.data_dir / CA_DIR / CA_CERTIFICATE_FILE,
            mqtt_tls_url=(
                f"mqtts://{options.host}:{options.mqtt_tls_port}"
                if options.mqtt_tls_port is not None
                else None
            ),
        )


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def print_banner(stack: RunningStack, out: TextIO) -> None:
    vehicles = stack.fleet.progress().vehicles if stack.fleet else 0
    print(
        "\nFleetLink is up.\n"
        f"  API            {stack.api_url}   (OpenAPI docs: {stack.api_url}/docs)\n"
        f"  MQTT           {stack.mqtt_url}\n"
        + (
            f"  MQTT (mTLS)    {stack.mqtt_tls_url}   (fleet CA: {stack.ca_certificate})\n"
            if stack.mqtt_tls_url
            else ""
        )
        + f"  PostgreSQL     {stack.database_url}\n"
        f"  Vehicles       {vehicles} simulated\n"
        f"  Admin token    {stack.admin_token}\n"
        f"                 (also in {stack.admin_token_file})\n"
        f"  Try: curl -H 'Authorization: Bearer {stack.admin_token}' {stack.api_url}/v1/vehicles\n"
        "Press Ctrl-C to stop.\n",
        file=out,
        flush=True,
    )


async def run_up(options: UpOptions, out: TextIO) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    started = asyncio.Event()
    main = asyncio.create_task(_serve_until(options, out, stop, started))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([main, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not main.done() and not started.is_set():
        # Ctrl-C during start-up: unwind what was started so far.
        print("Start-up interrupted; stopping what was started...", file=out, flush=True)
        main.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await main
    stopped.cancel()


async def _serve_until(
    options: UpOptions, out: TextIO, stop: asyncio.Event, started: asyncio.Event
) -> None:
    async with embedded_stack(options) as stack:
        started.set()
        print_banner(stack, out)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROGRESS_INTERVAL_S)
            log_status(stack)
        print(
            "Stopping FleetLink (waiting for in-flight data to be stored)...", file=out, flush=True
        )
    print("FleetLink stopped.", file=out, flush=True)


def log_status(stack: RunningStack) -> None:
    stats = stack.ingest.stats
    fleet = stack.fleet.progress() if stack.fleet else None
    log.info(
        "status",
        extra={
            "connected": f"{fleet.connected}/{fleet.vehicles}" if fleet else "0/0",
            "messages": stats.messages,
            "samples": stats.samples,
            "rejected": sum(stats.rejects.values()),
            "commit_failures": stats.commit_failures,
        },
    )
