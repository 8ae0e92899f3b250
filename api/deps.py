"""Dependencies as ``Annotated`` aliases, so route signatures stay short and typed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated
from uuid import UUID

import asyncpg
from argon2 import PasswordHasher
from fastapi import Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import CollectorRegistry

from api.customers.ownership import OwnershipStore
from api.customers.store import CustomerStore
from api.errors import ForbiddenError, NotAuthenticatedError, TokenExpiredError, UnavailableError
from api.notifications.hub import NotificationHub
from api.notifications.settings import NotifySettings
from api.security.access import AccessPolicy
from api.security.clients import ClientStore
from api.security.passwords import Passwords
from api.security.principal import STATIC_ADMIN_SUBJECT, Principal, Role
from api.security.tokens import TokenError, verify_access_token
from api.security.tokens import TokenExpiredError as ExpiredToken
from api.service.visibility import CentreBookingWindows
from api.settings import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, ApiSettings
from api.vehicle_registry import VehicleRegistry
from broker.fleet_ca import FleetCA
from broker.throttle import LoginThrottle
from diagnostics.alert_store import AlertStore
from ota.service import OtaService
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms
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
    clock: Clock = SYSTEM_CLOCK
    # Failed logins per (client address, login name); bounded memory (broker.throttle).
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    # Artifacts and the TUF image repository; None: the OTA routes answer 503 ota_unavailable.
    ota: OtaService | None = None
    # FLEETLINK_NOTIFY_*: the SSE stream's replay, keep-alive and queue (api.notifications).
    notify: NotifySettings = field(default_factory=NotifySettings)

    def __post_init__(self) -> None:
        self.customers = CustomerStore(self.pool)
        self.passwords = Passwords(
            PasswordHasher(
                time_cost=self.settings.password_hash_time_cost,
                memory_cost=self.settings.password_hash_memory_kib,
            )
        )
        self.clients = ClientStore(self.pool, self.passwords)
        self.ownership = OwnershipStore(self.pool)
        self.access = AccessPolicy(self.pool, bookings=CentreBookingWindows())
        self.alerts = AlertStore(self.pool)
        # One LISTEN connection fans notifications out to this process's SSE streams.
        self.notification_hub = NotificationHub(self.pool, queue_size=self.notify.sse_queue_size)

    def now(self) -> datetime:
        return utc_from_ms(self.clock.now_ms())


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.fleetlink
    return state


State = Annotated[AppState, Depends(get_state)]


class OtaUnavailableError(UnavailableError):
    code = "ota_unavailable"


def require_ota(state: State) -> OtaService:
    if state.ota is None:
        raise OtaUnavailableError("OTA is not enabled in this API process")
    return state.ota


Ota = Annotated[OtaService, Depends(require_ota)]

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="An access token from `POST /v1/auth/token`, or the admin token printed by "
    "`fleetlink up`",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _is_admin_token(settings: ApiSettings, token: str) -> bool:
    expected = settings.admin_token.get_secret_value().encode()
    return secrets.compare_digest(token.encode(), expected)


async def get_principal(
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller: the static admin token is a ``fleet_admin``; anything else must be a valid
    access token whose customer or client still exists (erased customers and disabled clients
    lose access at once, not when their token expires)."""
    if credentials is None:
        raise NotAuthenticatedError("a bearer token is required", headers=_CHALLENGE)
    token = credentials.credentials
    if _is_admin_token(state.settings, token):
        return Principal(STATIC_ADMIN_SUBJECT, Role.FLEET_ADMIN)
    try:
        claimed = verify_access_token(
            token, keys=state.settings.jwt_verification_keys, now=state.now()
        )
    except ExpiredToken as exc:
        raise TokenExpiredError(str(exc), headers=_CHALLENGE) from exc
    except TokenError as exc:
        raise NotAuthenticatedError("a valid bearer token is required", headers=_CHALLENGE) from exc
    current = await _current(state, claimed)
    if current is None:
        raise NotAuthenticatedError(
            "the account behind this token no longer exists or is disabled", headers=_CHALLENGE
        )
    return current


async def _current(state: AppState, claimed: Principal) -> Principal | None:
    customer_id = claimed.customer_id
    if customer_id is not None:
        return claimed if await state.customers.exists(customer_id) else None
    client_id = claimed.client_id
    return await state.clients.current(client_id) if client_id is not None else None


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise ForbiddenError("this route is for fleet administrators")
    return principal


Admin = Annotated[Principal, Depends(require_admin)]


def require_customer(principal: CurrentPrincipal) -> UUID:
    customer_id = principal.customer_id
    if customer_id is None:
        raise ForbiddenError("this route is for customers (a customer access token)")
    return customer_id


CurrentCustomer = Annotated[UUID, Depends(require_customer)]


def is_admin(state: State, request: Request) -> bool:
    """Whether the request carries the admin bearer token, on a public route. Reads the header
    itself rather than through ``HTTPBearer``, which would mark the route as secured in
    OpenAPI."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    return scheme.lower() == "bearer" and bool(token) and _is_admin_token(state.settings, token)


MaybeAdmin = Annotated[bool, Depends(is_admin)]


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


def page(
    state: State,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_LIMIT, description="Items per page")
    ] = DEFAULT_PAGE_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")] = 0,
) -> Page:
    """Paging for every list route, capped by ``FLEETLINK_API_MAX_PAGE_LIMIT``."""
    return Page(min(limit, state.settings.max_page_limit), offset)


Paging = Annotated[Page, Depends(page)]


def no_store(response: Response) -> None:
    """For responses that carry a password, private key, token or personal data: no cache may
    keep them (RFC 9111 section 5.2.2.5; ``Pragma`` for HTTP/1.0 proxies)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


NoStore = Depends(no_store)
