"""Ingest settings (environment prefix ``FLEETLINK_INGEST_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
DEFAULT_BATCH_MAX_MESSAGES = 500
DEFAULT_FLUSH_INTERVAL_MS = 200
DEFAULT_QUEUE_MAX_MESSAGES = 5_000
DEFAULT_RETENTION_DAYS = 30
DEFAULT_FUTURE_TOLERANCE_MS = 5 * 60 * 1000
DEFAULT_METRICS_HOST = "127.0.0.1"


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLINK_INGEST_", extra="ignore")

    client_id: str = Field(default="fleetlink-ingest-1", min_length=1, max_length=64)
    # MQTT 5 shared subscription group (e.g. "ingest") for N workers; None: plain subscription.
    share_group: str | None = None
    mqtt_version: Literal["3.1.1", "5"] = "3.1.1"
    batch_max_messages: int = Field(default=DEFAULT_BATCH_MAX_MESSAGES, ge=1, le=100_000)
    flush_interval_ms: int = Field(default=DEFAULT_FLUSH_INTERVAL_MS, ge=1, le=60_000)
    queue_max_messages: int = Field(default=DEFAULT_QUEUE_MAX_MESSAGES, ge=1)
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, ge=1024)
    retention_days: int = Field(default=DEFAULT_RETENTION_DAYS, ge=1)
    future_tolerance_ms: int = Field(default=DEFAULT_FUTURE_TOLERANCE_MS, ge=0)
    commit_timeout_ms: int = Field(default=30_000, ge=100)
    retry_max_backoff_ms: int = Field(default=10_000, ge=100)
    # Prometheus exposition of `fleetlink serve ingest` (GET http://host:port/metrics). None: off.
    # Loopback by default: the page has no authentication (it holds only aggregate counts).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = DEFAULT_METRICS_HOST
