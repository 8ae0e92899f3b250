"""Entitlement settings (environment prefix ``FLEETLINK_ENTITLEMENTS_``). The signing key lives
in the OTA online key directory (``OtaSettings.keys_dir``)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY_S = 86_400
#: How long a car accepts a document as new after it was signed. A document only needs to be
#: fresh when it arrives; the features it grants keep their own windows after that.
DEFAULT_DOCUMENT_LIFETIME_S = 7 * DAY_S
#: A push re-signs (as a new version) when less than this share of the lifetime is left, so a
#: car coming back after weeks offline gets a document it accepts.
DEFAULT_REFRESH_REMAINING_RATIO = 0.5
DEFAULT_POLL_INTERVAL_S = 5.0
DEFAULT_PUBLISH_TIMEOUT_S = 10.0
DEFAULT_LEASE_S = 60.0
DEFAULT_RETRY_BASE_S = 2.0
DEFAULT_RETRY_MAX_S = 300.0
DEFAULT_BATCH_SIZE = 100
DEFAULT_MAX_CONCURRENT_PUSHES = 16


class EntitlementSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLINK_ENTITLEMENTS_", extra="ignore")

    document_lifetime_s: int = Field(default=DEFAULT_DOCUMENT_LIFETIME_S, ge=60)
    refresh_remaining_ratio: float = Field(default=DEFAULT_REFRESH_REMAINING_RATIO, gt=0, lt=1)
    # Backstop behind NOTIFY entitlement_push: retries fall due by time alone.
    poll_interval_s: float = Field(default=DEFAULT_POLL_INTERVAL_S, gt=0)
    publish_timeout_s: float = Field(default=DEFAULT_PUBLISH_TIMEOUT_S, gt=0)
    # A claimed push is taken again after this (a pusher that died mid-publish); > timeout.
    lease_s: float = Field(default=DEFAULT_LEASE_S, gt=0)
    retry_base_s: float = Field(default=DEFAULT_RETRY_BASE_S, gt=0)
    retry_max_s: float = Field(default=DEFAULT_RETRY_MAX_S, gt=0)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=10_000)
    max_concurrent_pushes: int = Field(default=DEFAULT_MAX_CONCURRENT_PUSHES, ge=1, le=1000)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.lease_s <= self.publish_timeout_s:
            raise ValueError(
                f"FLEETLINK_ENTITLEMENTS_LEASE_S ({self.lease_s}) must exceed "
                f"FLEETLINK_ENTITLEMENTS_PUBLISH_TIMEOUT_S ({self.publish_timeout_s})"
            )
        return self

    @property
    def document_lifetime_ms(self) -> int:
        return self.document_lifetime_s * 1000
