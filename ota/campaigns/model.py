"""What a campaign is: the image, who gets it, in which waves, when, under which conditions,
and what the owner is told. Value objects that validate themselves, and their JSON form for
the ``jsonb`` columns of ``ota_campaigns``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from ota.campaigns.errors import CampaignInvalidError
from ota.campaigns.preconditions import Preconditions
from ota.campaigns.targeting import Targeting
from ota.campaigns.windows import ALL_DAYS, MaintenanceWindow, zone
from ota.image_target import ImageTarget
from ota.rollout import Wave, check_waves

MAX_FUNCTIONS = 32


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    HALTED = "halted"  # by itself (failure threshold); an operator may resume it
    CANCELLED = "cancelled"
    COMPLETED = "completed"  # every wave passed; late registrations are still served


#: Statuses in which the scheduler makes offers.
OFFERING = frozenset({CampaignStatus.ACTIVE, CampaignStatus.COMPLETED})


@dataclass(frozen=True, slots=True)
class OwnerInfo:
    """What the owner is told before an install (UN R156 7.1.2.4 and 7.2.2.1.2: purpose, the
    expected duration, and functions unavailable meanwhile)."""

    purpose: str
    duration_min: int
    functions_unavailable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.purpose) <= 1000:
            raise CampaignInvalidError(
                "purpose needs 1..1000 characters", field="owner_info.purpose", value=self.purpose
            )
        if not 1 <= self.duration_min <= 24 * 60:
            raise CampaignInvalidError(
                "duration_min must be 1..1440",
                field="owner_info.duration_min",
                value=self.duration_min,
            )
        if len(self.functions_unavailable) > MAX_FUNCTIONS:
            raise CampaignInvalidError(
                f"at most {MAX_FUNCTIONS} unavailable functions",
                field="owner_info.functions_unavailable",
                value=len(self.functions_unavailable),
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "duration_min": self.duration_min,
            "functions_unavailable": list(self.functions_unavailable),
        }


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """What an operator asks for."""

    name: str
    target_path: str
    owner_info: OwnerInfo
    waves: tuple[Wave, ...] = (Wave(1.0),)
    targeting: Targeting = field(default_factory=Targeting)
    window: MaintenanceWindow | None = None
    preconditions: Preconditions = field(default_factory=Preconditions)
    default_timezone: str = "UTC"
    # Signatures over the downgrade statement (ota/campaigns/downgrade.py), if any.
    downgrade_signatures: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= 200:
            raise CampaignInvalidError(
                "name needs 1..200 characters", field="name", value=self.name
            )
        check_waves(self.waves)
        zone(self.default_timezone)


@dataclass(frozen=True, slots=True)
class Campaign:
    id: uuid.UUID
    spec: CampaignSpec
    image: ImageTarget
    status: CampaignStatus
    current_wave: int
    status_reason: str | None
    enrolled_until: datetime
    created_at: datetime
    updated_at: datetime
    # Failures per wave an operator accepted by resuming a halted campaign.
    acknowledged_failures: Mapping[int, int] = field(default_factory=dict)


# -- JSON for the jsonb columns -----------------------------------------------------------------


def targeting_json(t: Targeting) -> dict[str, Any]:
    return {
        "brands": sorted(t.brands),
        "models": sorted(t.models),
        "model_years": sorted(t.model_years),
        "powertrains": sorted(t.powertrains),
        "regions": sorted(t.regions),
        "hardware_ids": sorted(t.hardware_ids),
        "current_versions": sorted(t.current_versions),
        "vins": sorted(t.vins),
        "include_future": t.include_future,
    }


def targeting_from(data: Mapping[str, Any]) -> Targeting:
    return Targeting(
        brands=frozenset(data.get("brands", ())),
        models=frozenset(data.get("models", ())),
        model_years=frozenset(data.get("model_years", ())),
        powertrains=frozenset(data.get("powertrains", ())),
        regions=frozenset(data.get("regions", ())),
        hardware_ids=frozenset(data.get("hardware_ids", ())),
        current_versions=frozenset(data.get("current_versions", ())),
        vins=frozenset(data.get("vins", ())),
        include_future=bool(data.get("include_future", False)),
    )


def waves_json(waves: Sequence[Wave]) -> list[dict[str, float]]:
    return [
        {
            "share": w.share,
            "success_threshold": w.success_threshold,
            "failure_threshold": w.failure_threshold,
        }
        for w in waves
    ]


def waves_from(data: Sequence[Mapping[str, Any]]) -> tuple[Wave, ...]:
    return tuple(Wave(w["share"], w["success_threshold"], w["failure_threshold"]) for w in data)


def window_json(window: MaintenanceWindow | None) -> dict[str, Any] | None:
    if window is None:
        return None
    return {
        "start": window.start.isoformat(timespec="minutes"),
        "end": window.end.isoformat(timespec="minutes"),
        "days": sorted(window.days),
    }


def window_from(data: Mapping[str, Any] | None) -> MaintenanceWindow | None:
    if data is None:
        return None
    return MaintenanceWindow(
        time.fromisoformat(data["start"]),
        time.fromisoformat(data["end"]),
        frozenset(data.get("days", ALL_DAYS)),
    )


def preconditions_json(p: Preconditions) -> dict[str, Any]:
    return {
        "require_parked": p.require_parked,
        "min_low_voltage_v": p.min_low_voltage_v,
        "min_traction_soc_pct": p.min_traction_soc_pct,
        "max_state_age_s": p.max_state_age.total_seconds() if p.max_state_age else None,
    }


def preconditions_from(data: Mapping[str, Any]) -> Preconditions:
    age = data.get("max_state_age_s")
    return Preconditions(
        require_parked=data["require_parked"],
        min_low_voltage_v=data["min_low_voltage_v"],
        min_traction_soc_pct=data["min_traction_soc_pct"],
        max_state_age=timedelta(seconds=age) if age is not None else None,
    )


def owner_info_from(data: Mapping[str, Any]) -> OwnerInfo:
    return OwnerInfo(data["purpose"], data["duration_min"], tuple(data["functions_unavailable"]))
