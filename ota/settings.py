"""OTA settings (environment prefix ``FLEETLINK_OTA_``).

Expiries follow the TUF spec's advice (section 4: root long-lived and offline, timestamp
short-lived and online): a year for root, three months for targets, a week for snapshot, a day
for timestamp. Online roles are re-signed when less than ``refresh_remaining_ratio`` of their
lifetime is left, so a client never meets an expired timestamp while the service runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY_S = 86_400
DEFAULT_DATA_DIR = Path(".fleetlink") / "ota"
DEFAULT_ROOT_EXPIRY_S = 365 * DAY_S
DEFAULT_TARGETS_EXPIRY_S = 90 * DAY_S
DEFAULT_SNAPSHOT_EXPIRY_S = 7 * DAY_S
DEFAULT_TIMESTAMP_EXPIRY_S = DAY_S
DEFAULT_REFRESH_REMAINING_RATIO = 0.5
DEFAULT_REFRESH_INTERVAL_S = 60.0
DEFAULT_MAX_ARTIFACT_BYTES = 4 * 1024**3
# Chunks of an upload gathered before one disk write (bounds memory per upload).
DEFAULT_WRITE_BUFFER_BYTES = 1024 * 1024
DEFAULT_DOWNLOAD_CHUNK_BYTES = 256 * 1024
MIN_EXPIRY_S = 60


class OtaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLINK_OTA_", extra="ignore")

    # Holds keys/ (the online keys, 0600) and artifacts/. Never the root keys: those live in a
    # separate offline directory that only `fleetlink ota keys init|rotate` opens.
    data_dir: Path = DEFAULT_DATA_DIR

    root_expiry_s: int = Field(default=DEFAULT_ROOT_EXPIRY_S, ge=MIN_EXPIRY_S)
    targets_expiry_s: int = Field(default=DEFAULT_TARGETS_EXPIRY_S, ge=MIN_EXPIRY_S)
    snapshot_expiry_s: int = Field(default=DEFAULT_SNAPSHOT_EXPIRY_S, ge=MIN_EXPIRY_S)
    timestamp_expiry_s: int = Field(default=DEFAULT_TIMESTAMP_EXPIRY_S, ge=MIN_EXPIRY_S)
    refresh_remaining_ratio: float = Field(default=DEFAULT_REFRESH_REMAINING_RATIO, gt=0, lt=1)
    refresh_interval_s: float = Field(default=DEFAULT_REFRESH_INTERVAL_S, gt=0)

    # Key policy used when a root is written (init, rotation); the root in force is the truth.
    root_key_count: int = Field(default=1, ge=1, le=16)
    root_threshold: int = Field(default=1, ge=1, le=16)
    targets_threshold: int = Field(default=1, ge=1, le=16)
    snapshot_threshold: int = Field(default=1, ge=1, le=16)
    timestamp_threshold: int = Field(default=1, ge=1, le=16)

    max_artifact_bytes: int = Field(default=DEFAULT_MAX_ARTIFACT_BYTES, ge=1)
    write_buffer_bytes: int = Field(default=DEFAULT_WRITE_BUFFER_BYTES, ge=4096)
    download_chunk_bytes: int = Field(default=DEFAULT_DOWNLOAD_CHUNK_BYTES, ge=4096)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.root_threshold > self.root_key_count:
            raise ValueError(
                f"FLEETLINK_OTA_ROOT_THRESHOLD ({self.root_threshold}) exceeds "
                f"FLEETLINK_OTA_ROOT_KEY_COUNT ({self.root_key_count})"
            )
        # The refresh loop must look at least twice inside the refresh window of the
        # shortest-lived role, or a missed tick lets timestamp.json expire.
        window_s = self.timestamp_expiry_s * self.refresh_remaining_ratio
        if self.refresh_interval_s * 2 > window_s:
            raise ValueError(
                f"FLEETLINK_OTA_REFRESH_INTERVAL_S ({self.refresh_interval_s}) must be at most "
                f"half the timestamp refresh window ({window_s:.0f} s)"
            )
        return self

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"
