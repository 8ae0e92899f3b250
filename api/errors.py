"""Typed API errors with stable codes, rendered as ``{"code": ..., "message": ...}``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.vehicle_registry import (
    VehicleAlreadyRegisteredError,
    VehicleNotFoundError,
    VehicleRevokedError,
)
from broker.certificates import CertificateError


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


class NotFoundError(ApiError):
    status_code = 404
    code = "not_found"


class UnavailableError(ApiError):
    status_code = 503
    code = "unavailable"


# Domain errors carry a stable ``code``; the API keeps it and picks the HTTP status.
_DOMAIN_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (VehicleNotFoundError, 404),
    (VehicleAlreadyRegisteredError, 409),
    (VehicleRevokedError, 409),
    (CertificateError, 422),
)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _render(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"code": exc.code, "message": exc.message},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    for error_type, status_code in _DOMAIN_STATUS:
        app.add_exception_handler(error_type, _domain_handler(status_code))


def _domain_handler(status_code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def render(_: Request, exc: Exception) -> JSONResponse:
        code = getattr(exc, "code", "error")
        return JSONResponse({"code": code, "message": str(exc)}, status_code=status_code)

    return render
