"""``create_app(settings)``: the FastAPI application and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from api.deps import AppState
from api.errors import install_error_handlers
from api.routes import health, provisioning, telemetry, vehicles
from api.routes import metrics as metrics_routes
from api.settings import ApiSettings
from api.vehicle_registry import VehicleRegistry
from broker.fleet_ca import FleetCA
from protocol.endpoint import MqttEndpoint

DESCRIPTION = """
FleetLink's HTTP API: vehicle provisioning (credentials, certificates, revocation), the
registry with connection state, each vehicle's latest state and telemetry history (raw or
min/avg/max per 1-minute or 1-hour bucket), health and Prometheus metrics.

Authenticate with `Authorization: Bearer <token>`; `fleetlink up` prints the admin token and
writes it to `<data dir>/admin.token`.
"""


PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]


def create_app(
    settings: ApiSettings,
    *,
    mqtt: MqttEndpoint,
    database: asyncpg.Pool | PoolFactory,
    fleet_ca: FleetCA | None = None,
    metrics: CollectorRegistry | None = None,
) -> FastAPI:
    """Build the app. ``database`` is an open pool owned by the caller (embedded runtime, tests)
    or a factory the lifespan calls to open a pool of its own, closed at shutdown. ``metrics``
    is the registry ``GET /metrics`` serves (``ingest.metrics.build_registry``); without it the
    route answers 404."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_pool = not isinstance(database, asyncpg.Pool)
        pool = await database() if not isinstance(database, asyncpg.Pool) else database
        registry = VehicleRegistry(
            pool, ca_certificate_pem=fleet_ca.certificate_pem if fleet_ca else None
        )
        app.state.fleetlink = AppState(
            settings=settings,
            pool=pool,
            registry=registry,
            mqtt=mqtt,
            fleet_ca=fleet_ca,
            metrics=metrics,
        )
        try:
            yield
        finally:
            if owns_pool:
                await pool.close()

    app = FastAPI(
        title="FleetLink API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(vehicles.router)
    app.include_router(provisioning.router)
    app.include_router(metrics_routes.router)
    app.include_router(telemetry.router)
    return app
