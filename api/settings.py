"""API settings (environment prefix ``FLEETLINK_API_``)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 500
_PLACEHOLDER_TOKENS = frozenset({"", "changeme", "change-me", "admin", "secret", "token"})
MIN_TOKEN_LENGTH = 24
MIN_JWT_SECRET_LENGTH = 32
DEFAULT_ACCESS_TOKEN_TTL_S = 900
DEFAULT_MAX_REQUEST_BODY_BYTES = 64 * 1024
DEFAULT_LOGIN_MAX_FAILURES = 5
DEFAULT_LOGIN_WINDOW_S = 300
# Label of the key derived from the admin token when no JWT secret is configured.
_DERIVED_KEY_LABEL = b"fleetlink-jwt-hs256-v1"


def _is_placeholder(secret: str, min_length: int) -> bool:
    return secret.lower() in _PLACEHOLDER_TOKENS or len(secret) < min_length


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
    # HS256 key for access tokens. Empty: derived from the admin token (HMAC-SHA256), so
    # `fleetlink up` needs no second secret; set it to rotate JWT keys independently.
    jwt_secret: SecretStr = SecretStr("")
    # The key before the last rotation: still accepted for verification, never used to sign.
    jwt_previous_secret: SecretStr = SecretStr("")
    access_token_ttl_s: int = Field(default=DEFAULT_ACCESS_TOKEN_TTL_S, ge=30, le=86_400)
    max_request_body_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BODY_BYTES, ge=1024)
    login_max_failures: int = Field(default=DEFAULT_LOGIN_MAX_FAILURES, ge=1)
    login_window_s: int = Field(default=DEFAULT_LOGIN_WINDOW_S, ge=1)
    # argon2id cost for customer and client passwords (RFC 9106 second recommendation).
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=64 * 1024, ge=8)

    @model_validator(mode="after")
    def _refuse_placeholder_token(self) -> Self:
        if _is_placeholder(self.admin_token.get_secret_value(), MIN_TOKEN_LENGTH):
            raise ValueError(
                f"FLEETLINK_API_ADMIN_TOKEN must be a random secret of at least "
                f"{MIN_TOKEN_LENGTH} characters (e.g. `python -c 'import secrets; "
                f"print(secrets.token_urlsafe(32))'`)"
            )
        for name, secret in (
            ("FLEETLINK_API_JWT_SECRET", self.jwt_secret),
            ("FLEETLINK_API_JWT_PREVIOUS_SECRET", self.jwt_previous_secret),
        ):
            value = secret.get_secret_value()
            if value and _is_placeholder(value, MIN_JWT_SECRET_LENGTH):
                raise ValueError(
                    f"{name} must be a random secret of at least {MIN_JWT_SECRET_LENGTH} "
                    "characters, or unset (then derived from the admin token)"
                )
        return self

    @property
    def jwt_signing_key(self) -> bytes:
        configured = self.jwt_secret.get_secret_value()
        if configured:
            return configured.encode()
        admin = self.admin_token.get_secret_value().encode()
        return hmac.new(admin, _DERIVED_KEY_LABEL, hashlib.sha256).digest()

    @property
    def jwt_verification_keys(self) -> tuple[bytes, ...]:
        previous = self.jwt_previous_secret.get_secret_value()
        return (self.jwt_signing_key, *((previous.encode(),) if previous else ()))
