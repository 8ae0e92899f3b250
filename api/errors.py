"""Typed API errors with stable codes, rendered as ``{"code": ..., "message": ...}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _render(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"code": exc.code, "message": exc.message},
            status_code=exc.status_code,
            headers=exc.headers,
        )
