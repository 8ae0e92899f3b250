"""Process-wide settings (environment prefix ``FLEETLINK_``); each package has its own class
for its own knobs (IngestSettings, ApiSettings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


#: What `fleetlink serve ROLE` runs (fleetlink.roles).
ROLES = ("ingest", "api", "diagnostics", "notify", "ota")


class FleetLinkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLINK_", extra="ignore")

    # PostgreSQL (with TimescaleDB when available), e.g. postgresql://user:pw@db:5432/fleetlink
    database_url: str | None = None
    # Broker URL with the service account's credentials: mqtt://svc-ingest:pw@broker:1883
    mqtt_url: str = DEFAULT_MQTT_URL
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    db_pool_max_size: int = Field(default=10, ge=1, le=200)
