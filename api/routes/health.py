"""``GET /healthz``: is the database reachable, is the broker reachable.

Public, for load balancers and probes. A failure's text names hosts, ports and database errors,
so only a caller with the admin bearer token sees it; anyone else gets the exception class.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import MaybeAdmin, State
from api.schemas import ComponentHealth, HealthPublic

router = APIRouter(tags=["health"])


MAX_DETAIL_CHARS = 200


def _failure(exc: BaseException, *, full: bool) -> ComponentHealth:
    name = type(exc).__name__
    text = str(exc) if full else ""
    return ComponentHealth(
        status="error", detail=(f"{name}: {text}" if text else name)[:MAX_DETAIL_CHARS]
    )


async def _database(state: State, timeout_s: float, *, full: bool) -> ComponentHealth:
    try:
        async with asyncio.timeout(timeout_s):
            await state.pool.fetchval("SELECT 1")
    except Exception as exc:
        return _failure(exc, full=full)
    return ComponentHealth(status="ok")


async def _broker(state: State, timeout_s: float, *, full: bool) -> ComponentHealth:
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(state.mqtt.host, state.mqtt.port)
        writer.close()
        await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        return _failure(exc, full=full)
    return ComponentHealth(status="ok")


@router.get(
    "/healthz",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "A dependency is unreachable"}},
    summary="Liveness and dependency reachability (no authentication)",
    description="Without authentication a failing component's `detail` is its error class; "
    "with the admin bearer token, the full error text.",
)
async def healthz(state: State, admin: MaybeAdmin) -> JSONResponse:
    timeout_s = state.settings.health_timeout_ms / 1000
    database, broker = await asyncio.gather(
        _database(state, timeout_s, full=admin), _broker(state, timeout_s, full=admin)
    )
    healthy = database.status == "ok" and broker.status == "ok"
    body = HealthPublic(status="ok" if healthy else "degraded", database=database, broker=broker)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
