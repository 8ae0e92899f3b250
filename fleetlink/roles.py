"""``fleetlink serve ROLE``: one role per process against a production database and broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from fleetlink.database import create_pool
from fleetlink.migrations import migrate
from fleetlink.settings import FleetLinkSettings
from ingest.consumer import IngestWorker
from ingest.location_consent import LocationConsent
from ingest.metrics import build_registry, serve_metrics
from ingest.settings import IngestSettings
from ingest.stats import IngestStats
from ingest.store import TelemetryStore
from protocol.endpoint import MqttEndpoint

log = logging.getLogger(__name__)

ROLES = ("ingest", "api")


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
        worker = IngestWorker(store, endpoint, ingest_settings, consent=LocationConsent(pool))
        with _metrics_server(worker.stats, ingest_settings):
            await worker.run(stop)
    finally:
        await pool.close()


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
    )
    print(f"FleetLink API on http://{api_settings.host}:{api_settings.port}", file=out, flush=True)
    # Here uvicorn owns the signals: the API holds no state that needs an ordered shutdown.
    uvicorn.run(app, host=api_settings.host, port=api_settings.port, log_level="info")
