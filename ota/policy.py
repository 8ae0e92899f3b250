"""The image repository's policy: which roles, how many keys, which thresholds, how long each
role's metadata lives and when it is re-signed. Pure values; no I/O.

TUF spec section 2.1 names the four top-level roles; section 4.3 has root list each role's
keys and threshold, so a threshold change is a new root version. Only root keys are offline
(spec section 6.1, "key management"): targets, snapshot and timestamp are signed by the
service itself, which is what lets it refresh them before they expire (section 4.4-4.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ota.errors import KeyPolicyError
from ota.settings import OtaSettings

ROOT: Final = "root"
TARGETS: Final = "targets"
SNAPSHOT: Final = "snapshot"
TIMESTAMP: Final = "timestamp"
TOP_LEVEL_ROLES: Final = (ROOT, TARGETS, SNAPSHOT, TIMESTAMP)
ONLINE_ROLES: Final = (TARGETS, SNAPSHOT, TIMESTAMP)


@dataclass(frozen=True, slots=True)
class RoleKeys:
    """How many keys a role has and how many must sign (the TUF threshold)."""

    count: int
    threshold: int

    def check(self, role: str) -> None:
        if not 1 <= self.threshold <= self.count:
            raise KeyPolicyError(
                f"{role}: threshold {self.threshold} needs 1..{self.count} keys", role=role
            )


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    root: RoleKeys
    targets: RoleKeys
    snapshot: RoleKeys
    timestamp: RoleKeys

    def __post_init__(self) -> None:
        for role in TOP_LEVEL_ROLES:
            self.for_role(role).check(role)

    def for_role(self, role: str) -> RoleKeys:
        policies = {
            ROOT: self.root,
            TARGETS: self.targets,
            SNAPSHOT: self.snapshot,
            TIMESTAMP: self.timestamp,
        }
        if role not in policies:
            raise KeyPolicyError(f"{role!r} is not a top-level TUF role", role=role)
        return policies[role]

    @classmethod
    def from_settings(cls, settings: OtaSettings, *, root: RoleKeys | None = None) -> KeyPolicy:
        # Online keys sit side by side on one server: more keys than the threshold would add
        # nothing an attacker on that server could not also take, so count == threshold.
        return cls(
            root=root or RoleKeys(settings.root_key_count, settings.root_threshold),
            targets=RoleKeys(settings.targets_threshold, settings.targets_threshold),
            snapshot=RoleKeys(settings.snapshot_threshold, settings.snapshot_threshold),
            timestamp=RoleKeys(settings.timestamp_threshold, settings.timestamp_threshold),
        )


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    root: timedelta
    targets: timedelta
    snapshot: timedelta
    timestamp: timedelta
    # Re-sign an online role once less than this share of its lifetime remains.
    refresh_remaining_ratio: float = 0.5

    def lifetime(self, role: str) -> timedelta:
        lifetimes = {
            ROOT: self.root,
            TARGETS: self.targets,
            SNAPSHOT: self.snapshot,
            TIMESTAMP: self.timestamp,
        }
        return lifetimes[role]

    def expires(self, role: str, now: datetime) -> datetime:
        """Expiry of a version of ``role`` signed at ``now``, to the second (TUF's format)."""
        return (now + self.lifetime(role)).replace(microsecond=0)

    def is_due(self, role: str, expires: datetime, now: datetime) -> bool:
        """Whether metadata of ``role`` expiring at ``expires`` should be re-signed at ``now``."""
        return expires - now <= self.lifetime(role) * self.refresh_remaining_ratio

    @classmethod
    def from_settings(cls, settings: OtaSettings) -> ExpiryPolicy:
        return cls(
            root=timedelta(seconds=settings.root_expiry_s),
            targets=timedelta(seconds=settings.targets_expiry_s),
            snapshot=timedelta(seconds=settings.snapshot_expiry_s),
            timestamp=timedelta(seconds=settings.timestamp_expiry_s),
            refresh_remaining_ratio=settings.refresh_remaining_ratio,
        )
