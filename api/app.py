"""``create_app(settings)``: the FastAPI application and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from api.deps import AppState
from api.errors import install_error_handlers
from api.routes import health, vehicles
from api.settings import ApiSettings
from api.vehicle_registry import VehicleRegistry
from protocol.endpoint import MqttEndpoint

DESCRIPTION = """
FleetLink's HTTP API: vehicles and their latest state (more with each release).

Authenticate with `Authorization: Bearer <token>`; `fleetlink up` prints the admin token and
writes it to `<data dir>/admin.token`.
"""


PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]


def create_app(
    settings: ApiSettings,
    *,
    mqtt: MqttEndpoint,
    database: asyncpg.Pool | PoolFactory,
) -> FastAPI:
    """Build the app. ``database`` is an open pool owned by the caller (embedded runtime, tests)
    or a factory the lifespan calls to open a pool of its own, closed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_pool = not isinstance(database, asyncpg.Pool)
        pool = await database() if not isinstance(database, asyncpg.Pool) else database
        app.state.fleetlink = AppState(
            settings=settings, pool=pool, registry=VehicleRegistry(pool), mqtt=mqtt
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
    return app
