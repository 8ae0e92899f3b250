"""``create_app(settings)``: the FastAPI application and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from api.deps import AppState
from api.errors import install_error_handlers
from api.routes import (
    alerts,
    auth,
    bookings,
    customers,
    entitlements,
    events,
    health,
    me,
    my_telemetry,
    notifications,
    offers,
    ota_artifacts,
    ota_campaigns,
    ota_director,
    ota_image,
    ownership,
    provisioning,
    recalls,
    service_centres,
    telemetry,
    vehicles,
    work_orders,
)
from api.routes import metrics as metrics_routes
from api.settings import ApiSettings
from api.vehicle_registry import VehicleRegistry
from broker.fleet_ca import FleetCA
from broker.throttle import THROTTLE_SOURCE_FAILURES, LoginThrottle
from ota.service import OtaService
from protocol.clock import SYSTEM_CLOCK, Clock
from protocol.endpoint import MqttEndpoint

DESCRIPTION = """
FleetLink's HTTP API: vehicle provisioning (credentials, certificates, revocation), the
registry with connection state, each vehicle's latest state and telemetry history (raw or
min/avg/max per 1-minute or 1-hour bucket), health and Prometheus metrics.

Customers: profiles, consent per purpose with history, vehicle ownership (link, transfer),
the 720-degree overview, GDPR export and erasure.

Authenticate with `Authorization: Bearer <token>`: an access token from `POST /v1/auth/token`
(customers: password grant; service clients: client_credentials), or the admin token that
`fleetlink up` prints and writes to `<data dir>/admin.token`. Roles: `customer`,
`service_center`, `fleet_admin`. Objects the caller may not see answer 404.
"""


PoolFactory = Callable[[], Awaitable[asyncpg.Pool]]


def create_app(
    settings: ApiSettings,
    *,
    mqtt: MqttEndpoint,
    database: asyncpg.Pool | PoolFactory,
    fleet_ca: FleetCA | None = None,
    metrics: CollectorRegistry | None = None,
    clock: Clock = SYSTEM_CLOCK,
    ota: OtaService | Callable[[asyncpg.Pool], OtaService] | None = None,
) -> FastAPI:
    """Build the app. ``database`` is an open pool owned by the caller (embedded runtime, tests)
    or a factory the lifespan calls to open a pool of its own, closed at shutdown. ``metrics``
    is the registry ``GET /metrics`` serves (``ingest.metrics.build_registry``); without it the
    route answers 404. ``clock`` dates tokens, consents and ownership (tests move it). ``ota``
    is the OTA service, or a factory the lifespan calls with the pool; without it the OTA
    routes answer 503."""

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
            clock=clock,
            ota=ota(pool) if callable(ota) else ota,
            login_throttle=LoginThrottle(
                failures=settings.login_max_failures,
                window_s=settings.login_window_s,
                source_failures=THROTTLE_SOURCE_FAILURES,
            ),
        )
        try:
            yield
        finally:
            # Open SSE streams end and the hub's LISTEN connection goes back before the pool.
            await app.state.fleetlink.notification_hub.close()
            if owns_pool:
                await pool.close()

    app = FastAPI(
        title="FleetLink API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # The body limit spares artifact uploads, which stream to disk under their own cap.
    app.add_middleware(
        ota_artifacts.BodyLimitExceptUploads, max_bytes=settings.max_request_body_bytes
    )
    for module in (
        health,
        auth,
        me,
        my_telemetry,
        customers,
        vehicles,
        events,
        alerts,
        notifications,
        ownership,
        provisioning,
        metrics_routes,
        telemetry,
        service_centres,
        bookings,
        work_orders,
        recalls,
        ota_artifacts,
        ota_image,
        ota_campaigns,
        ota_director,
        entitlements,
        offers,
    ):
        app.include_router(module.router)
    return app
