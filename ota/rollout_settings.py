"""Rollout scheduler settings (environment prefix ``FLEETLINK_OTA_ROLLOUT_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TICK_INTERVAL_S = 5.0
DEFAULT_OFFER_BATCH = 500
DEFAULT_RESEND_AFTER_S = 300.0
DEFAULT_MAX_COMMANDS = 5
DEFAULT_STATUS_WORKERS = 8
DEFAULT_STATUS_QUEUE = 1000
DEFAULT_CLIENT_ID = "fleetlink-ota"
DEFAULT_SHARE_GROUP: str | None = None


class RolloutSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLINK_OTA_ROLLOUT_", extra="ignore")

    # How often campaigns are looked at: waves evaluated, offers made, commands resent.
    tick_interval_s: float = Field(default=DEFAULT_TICK_INTERVAL_S, gt=0)
    # Vehicles considered for an offer per campaign and tick (the rest wait for the next).
    offer_batch: int = Field(default=DEFAULT_OFFER_BATCH, ge=1, le=100_000)
    # An accepted update with no progress is offered again after this long ...
    resend_after_s: float = Field(default=DEFAULT_RESEND_AFTER_S, gt=0)
    # ... at most this many commands in all (a car that stays away stays accepted).
    max_commands: int = Field(default=DEFAULT_MAX_COMMANDS, ge=1)
    # Status reports are handled by this many workers (one VIN always by the same one, so a
    # car's reports are applied in order), each with a bounded queue.
    status_workers: int = Field(default=DEFAULT_STATUS_WORKERS, ge=1, le=64)
    status_queue: int = Field(default=DEFAULT_STATUS_QUEUE, ge=1)
    max_report_bytes: int = Field(default=64 * 1024, ge=1024)
    mqtt_client_id: str = DEFAULT_CLIENT_ID
    # A shared subscription group ($share/<group>/..., MQTT 5 section 4.8.2; Mosquitto also
    # for 3.1.1) lets several OTA services share the reports. amqtt has none: unset.
    share_group: str | None = DEFAULT_SHARE_GROUP
