"""``fleetlink serve ROLE``: one role per process against a production database and broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import asyncpg
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from fleetlink.database import create_pool
from fleetlink.diagnostics_runtime import build_diagnostics, prune_outbox_periodically
from fleetlink.migrations import migrate
from fleetlink.platform_services import Service, platform_services
from fleetlink.settings import ROLES, FleetLinkSettings
from ingest.consumer import IngestWorker
from ingest.location_consent import LocationConsent
from ingest.metrics import build_registry, serve_metrics
from ingest.settings import IngestSettings
from ingest.stats import IngestStats
from ingest.store import TelemetryStore
from ota.entitlements.push import EntitlementPusher
from ota.rollout_scheduler import RolloutScheduler
from ota.service import OtaService
from ota.settings import OtaSettings
from protocol.endpoint import MqttEndpoint

log = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    code = "configuration_error"


def require_database_url(settings: FleetLinkSettings) -> str:
    if not settings.database_url:
        raise ConfigurationError(
            "FLEETLINK_DATABASE_URL is not set (e.g. postgresql://fleetlink:pw@db:5432/fleetlink);"
            " `fleetlink up` runs an embedded database instead"
        )
    return settings.database_url


async def run_migrations(settings: FleetLinkSettings) -> int:
    pool = await create_pool(require_database_url(settings), max_size=1)
    try:
        async with pool.acquire() as conn:
            return await migrate(conn)
    finally:
        await pool.close()


async def serve_ingest(settings: FleetLinkSettings, stop: asyncio.Event) -> None:
    endpoint = MqttEndpoint.parse(settings.mqtt_url)
    pool = await create_pool(require_database_url(settings), max_size=settings.db_pool_max_size)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        ingest_settings = IngestSettings()
        store = TelemetryStore(pool, timeout_s=ingest_settings.commit_timeout_ms / 1000)
        # The stream rules run beside each ingest worker, on the batches it commits (with N
        # workers on a shared subscription, a vehicle's duration rules see that worker's share).
        diagnostics = build_diagnostics(pool)
        await diagnostics.stream.restore()
        worker = IngestWorker(
            store,
            endpoint,
            ingest_settings,
            consent=LocationConsent(pool),
            on_commit=diagnostics.feed,
        )
        rules_stop = asyncio.Event()
        rules = asyncio.create_task(diagnostics.stream.run(rules_stop))
        offers = asyncio.create_task(diagnostics.offers.run(rules_stop))
        try:
            with _metrics_server(worker.stats, ingest_settings):
                await worker.run(stop)
        finally:
            rules_stop.set()
            await rules
            await offers
    finally:
        await pool.close()


async def serve_background(role: str, settings: FleetLinkSettings, stop: asyncio.Event) -> None:
    """``diagnostics``: the trend pass and outbox housekeeping; ``notify``: the outbox
    consumers and notification delivery (FLEETLINK_MQTT_URL with a commander account);
    ``ota``: TUF timestamp/snapshot refresh, the entitlement push and the rollout scheduler
    (FLEETLINK_MQTT_URL with a commander account that may read ``ota/status``). Each may run
    as several replicas."""
    pool = await create_pool(require_database_url(settings), max_size=settings.db_pool_max_size)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        services = _services(role, settings, pool)
        async with asyncio.TaskGroup() as group:
            for service in services:
                group.create_task(service.run(stop), name=service.name)
    finally:
        await pool.close()


def _services(role: str, settings: FleetLinkSettings, pool: asyncpg.Pool) -> list[Service]:
    if role == "diagnostics":
        diagnostics = build_diagnostics(pool)
        return [
            Service("trend pass", diagnostics.trend.run, 30),
            Service("outbox pruning", lambda stop: prune_outbox_periodically(pool, stop), 5),
        ]
    if role == "notify":
        return platform_services(pool, commands_mqtt=MqttEndpoint.parse(settings.mqtt_url))
    if role == "ota":
        ota_settings = OtaSettings()
        pusher = EntitlementPusher.from_settings(
            pool, ota_settings.keys_dir, MqttEndpoint.parse(settings.mqtt_url)
        )
        # Needs a commander account that may also read ota/status; replicas share the reports
        # through FLEETLINK_OTA_ROLLOUT_SHARE_GROUP (Mosquitto).
        scheduler = RolloutScheduler.over_mqtt(pool, MqttEndpoint.parse(settings.mqtt_url))
        return [
            Service("OTA metadata refresh", OtaService(pool, ota_settings).run, 5),
            Service("entitlement push", pusher.run, 5),
            Service("OTA rollouts", scheduler.run, 10),
        ]
    raise ConfigurationError(f"unknown role {role!r}; one of {', '.join(ROLES)}")


@contextmanager
def _metrics_server(stats: IngestStats, settings: IngestSettings) -> Iterator[None]:
    """Serve the worker's Prometheus metrics while it runs, when FLEETLINK_INGEST_METRICS_PORT
    is set (each worker process on its own port; Prometheus sums them)."""
    if settings.metrics_port is None:
        yield
        return
    server, _ = serve_metrics(
        build_registry(stats), host=settings.metrics_host, port=settings.metrics_port
    )
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def serve_api(settings: FleetLinkSettings, out: TextIO) -> None:
    database_url = require_database_url(settings)
    api_settings = ApiSettings()
    app = create_app(
        api_settings,
        mqtt=MqttEndpoint.parse(settings.mqtt_url),
        database=lambda: create_pool(database_url, max_size=settings.db_pool_max_size),
        ota=lambda pool: OtaService(pool, OtaSettings()),
    )
    print(f"FleetLink API on http://{api_settings.host}:{api_settings.port}", file=out, flush=True)
    # Here uvicorn owns the signals: the API holds no state that needs an ordered shutdown.
    uvicorn.run(app, host=api_settings.host, port=api_settings.port, log_level="info")
