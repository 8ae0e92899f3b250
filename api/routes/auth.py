"""``POST /v1/auth/token`` (OAuth2, RFC 6749) and service-client administration.

Two grants: ``password`` for customers (username = e-mail) and ``client_credentials`` for
service clients (a service centre's system, an admin tool). Repeated failures of one login name
from one address are refused with 429 for a while, without checking the password (each argon2
check costs tens of milliseconds of CPU); a much higher per-address limit stops a guesser that
varies the name. The same sliding-window throttle guards MQTT logins (broker.amqtt_plugin).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, status

from api.customer_schemas import ClientCreate, ClientCreated, ClientPublic, TokenPublic
from api.deps import Admin, NoStore, State
from api.errors import (
    FORBIDDEN,
    INVALID_REQUEST,
    UNAUTHENTICATED,
    OAuthError,
    TooManyAttemptsError,
)
from api.schemas import ErrorBody
from api.security.clients import ClientRecord
from api.security.principal import Principal, Role
from api.security.tokens import issue_access_token

router = APIRouter(prefix="/v1/auth", tags=["auth"])

_MAX_FIELD = 256


def _client_public(record: ClientRecord) -> ClientPublic:
    return ClientPublic(
        client_id=record.client_id,
        name=record.name,
        role=record.role.value,
        centres=sorted(record.centres),
        created_at=record.created_at,
        disabled_at=record.disabled_at,
    )


@router.post(
    "/token",
    response_model=TokenPublic,
    responses={
        400: {
            "model": ErrorBody,
            "description": "RFC 6749 5.2: code invalid_grant (wrong e-mail or password), "
            "unsupported_grant_type or invalid_request",
        },
        401: {"model": ErrorBody, "description": "code invalid_client (client credentials)"},
        422: INVALID_REQUEST,
        429: {
            "model": ErrorBody,
            "description": "Too many failed attempts for this name from this address "
            "(code too_many_attempts; see Retry-After)",
        },
    },
    dependencies=[NoStore],
    summary="Get an access token (OAuth2 password or client_credentials grant)",
    description="Form-encoded (`application/x-www-form-urlencoded`). Customers: "
    "`grant_type=password&username=<e-mail>&password=...`. Service clients: "
    "`grant_type=client_credentials&client_id=...&client_secret=...`. The answer is a "
    "short-lived JWT; send it as `Authorization: Bearer <access_token>`.",
)
async def token(
    *,
    request: Request,
    state: State,
    grant_type: Annotated[str, Form(max_length=32)],
    username: Annotated[str | None, Form(max_length=_MAX_FIELD)] = None,
    password: Annotated[str | None, Form(max_length=_MAX_FIELD)] = None,
    client_id: Annotated[str | None, Form(max_length=_MAX_FIELD)] = None,
    client_secret: Annotated[str | None, Form(max_length=_MAX_FIELD)] = None,
    scope: Annotated[str | None, Form(max_length=_MAX_FIELD, description="Ignored")] = None,
) -> TokenPublic:
    if grant_type == "password":
        name, secret = username, password
    elif grant_type == "client_credentials":
        name, secret = client_id, client_secret
    else:
        raise OAuthError(
            "unsupported_grant_type", f"grant_type {grant_type[:32]!r} is not supported"
        )
    if not name or not secret:
        raise OAuthError("invalid_request", f"grant_type {grant_type} needs a name and a secret")
    source = request.client.host if request.client else "unknown"
    throttle, instant = state.login_throttle, state.clock.now_ms() / 1000
    login = name.lower()
    if throttle.blocked(source, login, instant):
        raise TooManyAttemptsError(
            "too many failed attempts; try again later",
            headers={"Retry-After": str(state.settings.login_window_s)},
        )
    # Counted as failed before the (slow, argon2) check and forgiven if it succeeds: counted
    # after it, a burst of parallel attempts would all pass the check above first.
    throttle.failed(source, login, instant)
    principal = await _authenticate(state, grant_type, name, secret)
    if principal is None:
        if grant_type == "password":
            raise OAuthError("invalid_grant", "wrong e-mail or password")
        raise OAuthError(
            "invalid_client", "wrong client id or secret", status_code=status.HTTP_401_UNAUTHORIZED
        )
    throttle.forgive(source, login)
    ttl = timedelta(seconds=state.settings.access_token_ttl_s)
    issued = issue_access_token(
        principal, key=state.settings.jwt_signing_key, now=state.now(), ttl=ttl
    )
    return TokenPublic(
        access_token=issued.token, expires_in=int(ttl.total_seconds()), role=principal.role.value
    )


async def _authenticate(state: State, grant_type: str, name: str, secret: str) -> Principal | None:
    if grant_type == "client_credentials":
        return await state.clients.authenticate(name, secret)
    login = await state.customers.login(name)
    if not await state.passwords.verify(login.password_hash, secret) or login.customer_id is None:
        return None
    return Principal.customer(login.customer_id)


_ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    422: INVALID_REQUEST,
}
ClientIdPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")]


@router.post(
    "/clients",
    status_code=status.HTTP_201_CREATED,
    response_model=ClientCreated,
    responses={**_ADMIN_RESPONSES, 409: {"model": ErrorBody, "description": "client_exists"}},
    dependencies=[NoStore],
    summary="Create a service client (admin); its secret is returned once",
    description="A `service_center` client acts for the listed centres; a `fleet_admin` "
    "client for everything.",
)
async def create_client(state: State, _: Admin, body: ClientCreate) -> ClientCreated:
    created = await state.clients.create(
        body.client_id,
        name=body.name,
        role=Role(body.role),
        centres=frozenset(body.centres),
        now=state.now(),
    )
    return ClientCreated(
        **_client_public(created.record).model_dump(), client_secret=created.secret
    )


@router.post(
    "/clients/{client_id}/disable",
    response_model=ClientPublic,
    responses={**_ADMIN_RESPONSES, 404: {"model": ErrorBody, "description": "client_not_found"}},
    summary="Disable a service client (admin): its tokens stop working at once",
)
async def disable_client(state: State, _: Admin, client_id: ClientIdPath) -> ClientPublic:
    return _client_public(await state.clients.disable(client_id, now=state.now()))
