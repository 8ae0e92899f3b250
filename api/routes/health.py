"""``GET /healthz``: is the database reachable, is the broker reachable."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import State
from api.schemas import ComponentHealth, HealthPublic

router = APIRouter(tags=["health"])


async def _database(state: State, timeout_s: float) -> ComponentHealth:
    try:
        async with asyncio.timeout(timeout_s):
            await state.pool.fetchval("SELECT 1")
    except Exception as exc:
        return ComponentHealth(status="error", detail=f"{type(exc).__name__}: {exc}"[:200])
    return ComponentHealth(status="ok")


async def _broker(state: State, timeout_s: float) -> ComponentHealth:
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(state.mqtt.host, state.mqtt.port)
        writer.close()
        await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        return ComponentHealth(status="error", detail=f"{type(exc).__name__}: {exc}"[:200])
    return ComponentHealth(status="ok")


@router.get(
    "/healthz",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "A dependency is unreachable"}},
    summary="Liveness and dependency reachability (no authentication)",
)
async def healthz(state: State) -> JSONResponse:
    timeout_s = state.settings.health_timeout_ms / 1000
    database, broker = await asyncio.gather(_database(state, timeout_s), _broker(state, timeout_s))
    healthy = database.status == "ok" and broker.status == "ok"
    body = HealthPublic(status="ok" if healthy else "degraded", database=database, broker=broker)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
