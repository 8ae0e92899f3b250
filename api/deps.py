"""Dependencies as ``Annotated`` aliases, so route signatures stay short and typed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
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


def _is_admin_token(settings: ApiSettings, token: str) -> bool:
    expected = settings.admin_token.get_secret_value().encode()
    return secrets.compare_digest(token.encode(), expected)


def require_admin(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if credentials is None or not _is_admin_token(state.settings, credentials.credentials):
        raise NotAuthenticatedError(
            "a valid admin bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


Admin = Annotated[None, Depends(require_admin)]


def is_admin(state: State, request: Request) -> bool:
    """Whether the request carries the admin bearer token, on a public route. Reads the header
    itself rather than through ``HTTPBearer``, which would mark the route as secured in
    OpenAPI."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    return scheme.lower() == "bearer" and bool(token) and _is_admin_token(state.settings, token)


MaybeAdmin = Annotated[bool, Depends(is_admin)]


def no_store(response: Response) -> None:
    """For responses that carry a password or private key: no cache may keep them (RFC 9111
    section 5.2.2.5; ``Pragma`` for HTTP/1.0 proxies)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


NoStore = Depends(no_store)
