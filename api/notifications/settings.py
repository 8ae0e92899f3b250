"""Notification settings (environment prefix ``FLEETLINK_NOTIFY_``): the SMTP adapter, the
delivery loop's retries and timeouts, and the SSE stream."""

from __future__ import annotations

import ipaddress
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SMTP_PORT = 587
DEFAULT_SMTP_FROM = "FleetLink <notifications@fleetlink.invalid>"
DEFAULT_SMTP_TIMEOUT_S = 10.0
DEFAULT_MQTT_PUBLISH_TIMEOUT_S = 10.0
DEFAULT_SEND_TIMEOUT_S = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_BASE_S = 30.0
DEFAULT_RETRY_MAX_S = 3600.0
DEFAULT_BATCH_SIZE = 50
DEFAULT_MAX_CONCURRENT_SENDS = 8
DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_SSE_REPLAY = 20
MAX_SSE_REPLAY = 100
DEFAULT_SSE_KEEPALIVE_S = 15.0
DEFAULT_SSE_POLL_INTERVAL_S = 5.0
DEFAULT_SSE_QUEUE_SIZE = 64
DEFAULT_SSE_BATCH = 100
_PLACEHOLDER_PASSWORDS = frozenset({"changeme", "change-me", "password", "secret", "smtp"})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEETLINK_NOTIFY_", extra="ignore", hide_input_in_errors=True
    )

    # E-mail. An empty host: this deployment sends no e-mail (deliveries are suppressed with
    # reason no_email_provider, visibly, instead of failing after retries).
    smtp_host: str = ""
    smtp_port: int = Field(default=DEFAULT_SMTP_PORT, ge=1, le=65535)
    smtp_from: str = Field(default=DEFAULT_SMTP_FROM, min_length=3, max_length=254)
    smtp_starttls: bool = True
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_s: float = Field(default=DEFAULT_SMTP_TIMEOUT_S, gt=0, le=300)

    # In-car: how long a QoS 1 publish may wait for the broker's PUBACK.
    mqtt_publish_timeout_s: float = Field(default=DEFAULT_MQTT_PUBLISH_TIMEOUT_S, gt=0, le=300)

    # The delivery loop. A send is bounded by send_timeout_s whatever the adapter does; a
    # claimed delivery whose sender died is taken again after claim_lease_s, so the lease must
    # outlast a send.
    send_timeout_s: float = Field(default=DEFAULT_SEND_TIMEOUT_S, gt=0, le=600)
    claim_lease_s: float = Field(default=2 * DEFAULT_SEND_TIMEOUT_S, gt=0, le=3600)
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1, le=100)
    retry_base_s: float = Field(default=DEFAULT_RETRY_BASE_S, gt=0)
    retry_max_s: float = Field(default=DEFAULT_RETRY_MAX_S, gt=0)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=1000)
    max_concurrent_sends: int = Field(default=DEFAULT_MAX_CONCURRENT_SENDS, ge=1, le=256)
    poll_interval_s: float = Field(default=DEFAULT_POLL_INTERVAL_S, gt=0, le=60)

    # The SSE stream.
    sse_replay: int = Field(default=DEFAULT_SSE_REPLAY, ge=0, le=MAX_SSE_REPLAY)
    sse_keepalive_s: float = Field(default=DEFAULT_SSE_KEEPALIVE_S, gt=0, le=300)
    sse_poll_interval_s: float = Field(default=DEFAULT_SSE_POLL_INTERVAL_S, gt=0, le=300)
    sse_queue_size: int = Field(default=DEFAULT_SSE_QUEUE_SIZE, ge=1, le=10_000)
    sse_batch: int = Field(default=DEFAULT_SSE_BATCH, ge=1, le=1000)

    @model_validator(mode="after")
    def _refuse_unsafe_smtp(self) -> Self:
        password = self.smtp_password.get_secret_value()
        if password.lower() in _PLACEHOLDER_PASSWORDS:
            raise ValueError("FLEETLINK_NOTIFY_SMTP_PASSWORD is a placeholder; set the real one")
        if self.smtp_user and not password:
            raise ValueError("FLEETLINK_NOTIFY_SMTP_USER is set but SMTP_PASSWORD is empty")
        # smtplib would send the password in clear text to a remote server.
        if self.smtp_user and not self.smtp_starttls and not _is_loopback(self.smtp_host):
            raise ValueError(
                "SMTP login without STARTTLS is allowed only to a loopback relay "
                "(set FLEETLINK_NOTIFY_SMTP_STARTTLS=true)"
            )
        if self.claim_lease_s <= self.send_timeout_s:
            raise ValueError("claim_lease_s must be longer than send_timeout_s")
        if self.retry_max_s < self.retry_base_s:
            raise ValueError("retry_max_s must be at least retry_base_s")
        return self

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host)
