"""Director settings (environment prefix ``FLEETLINK_OTA_DIRECTOR_``).

The director signs per-vehicle metadata on demand, when the car asks for its timestamp
(ADR 0009), so lifetimes can be short without a fleet-wide refresh job: targets a week,
snapshot and timestamp a day. A car that has not asked for a day simply gets fresh metadata
when it next asks; a car that cannot reach the director sees its metadata expire and stops
installing (TUF's freeze protection, Uptane 5.4.4.2).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ota.policy import ExpiryPolicy
from ota.settings import DAY_S, MIN_EXPIRY_S, OtaSettings

DIRECTOR_KEYS_DIR = "director-keys"
DEFAULT_ROOT_EXPIRY_S = 365 * DAY_S
DEFAULT_TARGETS_EXPIRY_S = 7 * DAY_S
DEFAULT_SNAPSHOT_EXPIRY_S = DAY_S
DEFAULT_TIMESTAMP_EXPIRY_S = DAY_S
DEFAULT_REFRESH_REMAINING_RATIO = 0.5


class DirectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLINK_OTA_DIRECTOR_", extra="ignore")

    # The online director keys; default <FLEETLINK_OTA_DATA_DIR>/director-keys. The director's
    # root keys live offline, like the image repository's (docs/ota.md).
    keys_dir: Path | None = None
    root_expiry_s: int = Field(default=DEFAULT_ROOT_EXPIRY_S, ge=MIN_EXPIRY_S)
    targets_expiry_s: int = Field(default=DEFAULT_TARGETS_EXPIRY_S, ge=MIN_EXPIRY_S)
    snapshot_expiry_s: int = Field(default=DEFAULT_SNAPSHOT_EXPIRY_S, ge=MIN_EXPIRY_S)
    timestamp_expiry_s: int = Field(default=DEFAULT_TIMESTAMP_EXPIRY_S, ge=MIN_EXPIRY_S)
    refresh_remaining_ratio: float = Field(default=DEFAULT_REFRESH_REMAINING_RATIO, gt=0, lt=1)

    def keys_path(self, ota: OtaSettings) -> Path:
        return self.keys_dir if self.keys_dir is not None else ota.data_dir / DIRECTOR_KEYS_DIR

    def expiry(self) -> ExpiryPolicy:
        return ExpiryPolicy(
            root=timedelta(seconds=self.root_expiry_s),
            targets=timedelta(seconds=self.targets_expiry_s),
            snapshot=timedelta(seconds=self.snapshot_expiry_s),
            timestamp=timedelta(seconds=self.timestamp_expiry_s),
            refresh_remaining_ratio=self.refresh_remaining_ratio,
        )
