"""API settings (environment prefix ``FLEETLINK_API_``)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 500
_PLACEHOLDER_TOKENS = frozenset({"", "changeme", "change-me", "admin", "secret", "token"})
MIN_TOKEN_LENGTH = 24


class ApiSettings(BaseSettings):
    # hide_input_in_errors: a refused admin token must not be echoed into logs and tracebacks.
    model_config = SettingsConfigDict(
        env_prefix="FLEETLINK_API_", extra="ignore", hide_input_in_errors=True
    )

    host: str = DEFAULT_HOST
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    admin_token: SecretStr = SecretStr("")
    max_page_limit: int = Field(default=MAX_PAGE_LIMIT, ge=1)
    health_timeout_ms: int = Field(default=2_000, ge=100)

    @model_validator(mode="after")
    def _refuse_placeholder_token(self) -> Self:
        token = self.admin_token.get_secret_value()
        if token.lower() in _PLACEHOLDER_TOKENS or len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"FLEETLINK_API_ADMIN_TOKEN must be a random secret of at least "
                f"{MIN_TOKEN_LENGTH} characters (e.g. `python -c 'import secrets; "
                f"print(secrets.token_urlsafe(32))'`)"
            )
        return self
