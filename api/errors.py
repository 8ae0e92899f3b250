"""Typed API errors with stable codes, rendered as ``{"code": ..., "message": ...}``.

Every error has that shape, FastAPI's own included: request validation answers 422
``invalid_request`` with an ``errors`` list, unknown routes 404 ``not_found``, wrong methods 405
``method_not_allowed``. Clients parse one body, never FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.customers.errors import (
    CustomerNotFoundError,
    EmailTakenError,
    NoOwnerError,
    OwnershipError,
)
from api.offers.store import OfferAlreadyRedeemedError, OfferExpiredError, PartnerExistsError
from api.schemas import ErrorBody
from api.security.clients import ClientExistsError, ClientNotFoundError
from api.vehicle_registry import (
    VehicleAlreadyRegisteredError,
    VehicleNotFoundError,
    VehicleRevokedError,
)
from broker.certificates import CertificateError
from diagnostics.offers.config_store import RuleExistsError, RuleVersionConflictError


class ApiError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class NotAuthenticatedError(ApiError):
    status_code = 401
    code = "not_authenticated"


class TokenExpiredError(NotAuthenticatedError):
    code = "token_expired"


class ForbiddenError(ApiError):
    """The caller is authenticated but their role may not use this route at all. (Objects of
    other customers answer 404 instead, so their existence is not revealed.)"""

    status_code = 403
    code = "forbidden"


class TooManyAttemptsError(ApiError):
    status_code = 429
    code = "too_many_attempts"


class OAuthError(ApiError):
    """RFC 6749 section 5.2: the ``code`` is the OAuth2 ``error`` value."""

    def __init__(self, code: str, message: str, *, status_code: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = status_code


class NotFoundError(ApiError):
    status_code = 404
    code = "not_found"


class UnavailableError(ApiError):
    status_code = 503
    code = "unavailable"


# OpenAPI responses shared by the routes that take a bearer token.
UNAUTHENTICATED: dict[str, Any] = {
    "model": ErrorBody,
    "description": "Missing, invalid or expired bearer token (code not_authenticated or "
    "token_expired)",
}
FORBIDDEN: dict[str, Any] = {
    "model": ErrorBody,
    "description": "The caller's role may not use this route (code forbidden)",
}


# The OpenAPI 422 response of every route that takes parameters or a body.
INVALID_REQUEST: dict[str, Any] = {
    "model": ErrorBody,
    "description": "Invalid request (code invalid_request; `errors` lists each field)",
}


# Domain errors carry a stable ``code``; the API keeps it and picks the HTTP status.
_DOMAIN_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (VehicleNotFoundError, 404),
    (VehicleAlreadyRegisteredError, 409),
    (VehicleRevokedError, 409),
    (CertificateError, 422),
    (CustomerNotFoundError, 404),
    (EmailTakenError, 409),
    (OwnershipError, 409),
    (NoOwnerError, 404),
    (ClientExistsError, 409),
    (ClientNotFoundError, 404),
    (RuleExistsError, 409),
    (RuleVersionConflictError, 409),
    (PartnerExistsError, 409),
    (OfferAlreadyRedeemedError, 409),
    (OfferExpiredError, 410),
)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _render(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"code": exc.code, "message": exc.message},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_error_body(exc.errors()), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"code": _HTTP_CODES.get(exc.status_code, "http_error"), "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    for error_type, status_code in _DOMAIN_STATUS:
        app.add_exception_handler(error_type, _domain_handler(status_code))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}
MAX_REPORTED_ERRORS = 20


def validation_error_body(errors: Sequence[Any]) -> dict[str, Any]:
    """``{"code": "invalid_request", "message", "errors": [{"loc", "msg"}]}``. The offending
    input is left out: it may be a secret or megabytes long, and the caller has it anyway."""
    fields = [
        {"loc": [part for part in e.get("loc", ()) if isinstance(part, str | int)], "msg": e["msg"]}
        for e in errors[:MAX_REPORTED_ERRORS]
        if isinstance(e, dict) and isinstance(e.get("msg"), str)
    ]
    if not fields:
        return {"code": "invalid_request", "message": "invalid request", "errors": []}
    first = fields[0]
    where = ".".join(str(part) for part in first["loc"]) or "request"
    message = f"{where}: {first['msg']}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return {"code": "invalid_request", "message": message, "errors": fields}


def _domain_handler(status_code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def render(_: Request, exc: Exception) -> JSONResponse:
        code = getattr(exc, "code", "error")
        return JSONResponse({"code": code, "message": str(exc)}, status_code=status_code)

    return render
