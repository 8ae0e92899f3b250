"""Dependencies as ``Annotated`` aliases, so route signatures stay short and typed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

from api.errors import NotAuthenticatedError
from api.settings import ApiSettings
from api.vehicle_registry import VehicleRegistry
from broker.fleet_ca import FleetCA
from protocol.endpoint import MqttEndpoint


@dataclass
class AppState:
    """What the lifespan builds and the routes use."""

    settings: ApiSettings
    pool: asyncpg.Pool
    registry: VehicleRegistry
    mqtt: MqttEndpoint
    fleet_ca: FleetCA | None = None
    # What GET /metrics exposes; None: this process has no metrics and the route answers 404.
    metrics: CollectorRegistry | None = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.fleetlink
    return state


State = Annotated[AppState, Depends(get_state)]

_bearer = HTTPBearer(auto_error=False, description="The admin token printed by `fleetlink up`")


def require_admin(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = state.settings.admin_token.get_secret_value().encode()
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), expected
    ):
        raise NotAuthenticatedError(
            "a valid admin bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


Admin = Annotated[None, Depends(require_admin)]
