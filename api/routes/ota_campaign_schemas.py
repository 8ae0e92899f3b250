"""Request and response models of the OTA campaign routes (:mod:`api.routes.ota_campaigns`),
with their conversions to and from the domain's value objects."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from api.schemas import ApiModel
from ota.campaigns.model import (
    Campaign,
    CampaignSpec,
    OwnerInfo,
    preconditions_json,
    targeting_json,
    waves_json,
    window_json,
)
from ota.campaigns.preconditions import Preconditions
from ota.campaigns.store import CampaignStats
from ota.campaigns.targeting import MAX_VINS, Targeting
from ota.campaigns.updates import VehicleUpdate
from ota.campaigns.windows import MaintenanceWindow
from ota.rollout import Wave
from ota.software_record import SoftwareChange, VehicleSoftware
from ota.status_machine import FAILURES, UpdateStatus
from protocol.vin import VIN_PATTERN

Share = Annotated[float, Field(gt=0, le=1)]
Rate = Annotated[float, Field(ge=0, le=1)]
Powertrain = Literal["ice", "bev", "phev", "hev"]


class TargetingIn(ApiModel):
    brands: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    model_years: list[int] = Field(default_factory=list)
    powertrains: list[Powertrain] = Field(default_factory=list)
    regions: list[str] = Field(
        default_factory=list, description="Owner's country (ISO 3166-1 alpha-2)"
    )
    hardware_ids: list[str] = Field(default_factory=list)
    current_versions: list[str] = Field(
        default_factory=list, description="Versions the ECU runs now"
    )
    vins: list[Annotated[str, Field(pattern=VIN_PATTERN)]] = Field(
        default_factory=list, max_length=MAX_VINS
    )
    include_future: bool = Field(False, description="Vehicles registered later join")

    def value(self) -> Targeting:
        return Targeting(
            frozenset(self.brands),
            frozenset(self.models),
            frozenset(self.model_years),
            frozenset(self.powertrains),
            frozenset(self.regions),
            frozenset(self.hardware_ids),
            frozenset(self.current_versions),
            frozenset(self.vins),
            self.include_future,
        )


class WaveIn(ApiModel):
    share: Share = Field(description="Cumulative share of the targeted vehicles")
    success_threshold: Rate = Field(0.9, description="Installed share to open the next wave")
    failure_threshold: Rate = Field(0.1, description="Failed share above which it halts")


class WindowIn(ApiModel):
    start: time = Field(examples=["01:00"])
    end: time = Field(examples=["05:00"])
    days: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default=[1, 2, 3, 4, 5, 6, 7], min_length=1, description="ISO weekdays the window opens"
    )


class PreconditionsIn(ApiModel):
    require_parked: bool = True
    min_low_voltage_v: float | None = Field(12.2, ge=0, le=60)
    min_traction_soc_pct: float | None = Field(30.0, ge=0, le=100)
    max_state_age_s: int | None = Field(None, ge=1)

    def value(self) -> Preconditions:
        age = self.max_state_age_s
        return Preconditions(
            self.require_parked,
            self.min_low_voltage_v,
            self.min_traction_soc_pct,
            timedelta(seconds=age) if age else None,
        )


class OwnerInfoIn(ApiModel):
    purpose: str = Field(min_length=1, max_length=1000)
    duration_min: int = Field(ge=1, le=1440, description="Expected install time")
    functions_unavailable: list[str] = Field(default_factory=list, max_length=32)


class CampaignCreate(ApiModel):
    id: UUID | None = Field(None, description="Chosen by the client: a retried create is refused")
    name: str = Field(min_length=1, max_length=200)
    target: str = Field(description="The image's target path", examples=["tcu-fw-2.1.0"])
    owner_info: OwnerInfoIn
    targeting: TargetingIn = TargetingIn()
    waves: list[WaveIn] = Field(default=[WaveIn(share=1.0)], min_length=1, max_length=20)
    maintenance_window: WindowIn | None = None
    preconditions: PreconditionsIn = PreconditionsIn()
    timezone: str = Field("UTC", description="For vehicles whose owner's zone is unknown")
    downgrade_override: dict[str, str] | None = Field(
        None, description="keyid -> signature by the image repository's root keys"
    )

    def spec(self) -> CampaignSpec:
        window = self.maintenance_window
        info = self.owner_info
        return CampaignSpec(
            name=self.name,
            target_path=self.target,
            owner_info=OwnerInfo(
                info.purpose, info.duration_min, tuple(info.functions_unavailable)
            ),
            waves=tuple(
                Wave(w.share, w.success_threshold, w.failure_threshold) for w in self.waves
            ),
            targeting=self.targeting.value(),
            window=MaintenanceWindow(window.start, window.end, frozenset(window.days))
            if window
            else None,
            preconditions=self.preconditions.value(),
            default_timezone=self.timezone,
            downgrade_signatures=self.downgrade_override,
        )


class WaveStatsPublic(ApiModel):
    wave: int
    share: float
    size: int
    installed: int
    failed: int
    in_flight: int


class CampaignPublic(ApiModel):
    id: UUID
    name: str
    target: str
    version: str
    sha256: str
    length: int
    hardware_ids: list[str]
    release_counter: int
    status: str = Field(description="active, paused, halted, cancelled or completed")
    status_reason: str | None
    current_wave: int
    waves: list[WaveIn]
    targeting: dict[str, Any]
    maintenance_window: dict[str, Any] | None
    preconditions: dict[str, Any]
    owner_info: dict[str, Any]
    timezone: str
    created_at: datetime
    updated_at: datetime
    vehicles: int
    by_status: dict[str, int] = Field(description="Vehicles per update status")
    wave_stats: list[WaveStatsPublic]
    installed_rate: float
    failure_rate: float


class CampaignsPublic(ApiModel):
    data: list[CampaignPublic]
    count: int


def campaign_public(campaign: Campaign, stats: CampaignStats) -> CampaignPublic:
    spec, image = campaign.spec, campaign.image
    shares = {i: w.share for i, w in enumerate(spec.waves)}
    return CampaignPublic(
        id=campaign.id,
        name=spec.name,
        target=image.path,
        version=image.spec.version,
        sha256=image.sha256,
        length=image.length,
        hardware_ids=list(image.spec.hardware_ids),
        release_counter=image.spec.release_counter,
        status=campaign.status.value,
        status_reason=campaign.status_reason,
        current_wave=campaign.current_wave,
        waves=[WaveIn(**w) for w in waves_json(spec.waves)],
        targeting=targeting_json(spec.targeting),
        maintenance_window=window_json(spec.window),
        preconditions=preconditions_json(spec.preconditions),
        owner_info=spec.owner_info.to_json(),
        timezone=spec.default_timezone,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        vehicles=stats.total,
        by_status=dict(stats.by_status),
        wave_stats=[
            WaveStatsPublic(
                wave=w.wave,
                share=shares.get(w.wave, 1.0),
                size=w.size,
                installed=w.installed,
                failed=w.failed,
                in_flight=w.in_flight,
            )
            for w in stats.waves
        ],
        installed_rate=stats.rate(UpdateStatus.INSTALLED),
        failure_rate=stats.rate(*FAILURES),
    )


class VehicleUpdatePublic(ApiModel):
    campaign_id: UUID
    vin: str
    wave: int
    status: UpdateStatus
    attempt: int
    requires_consent: bool | None = Field(description="Whether the owner must accept")
    result_code: str | None = Field(description="Why it failed, rolled back or was cancelled")
    result_detail: str | None
    hold_reason: str | None = Field(description="Why an assigned update is not offered yet")
    reached: dict[str, datetime] = Field(description="When each status was reached")
    updated_at: datetime


class VehicleUpdatesPublic(ApiModel):
    data: list[VehicleUpdatePublic]
    count: int


def update_public(update: VehicleUpdate) -> VehicleUpdatePublic:
    record = update.record
    return VehicleUpdatePublic(
        campaign_id=update.campaign_id,
        vin=update.vin,
        wave=update.wave,
        status=record.status,
        attempt=record.attempt,
        requires_consent=update.requires_consent,
        result_code=record.code,
        result_detail=record.detail,
        hold_reason=update.hold_reason,
        reached={status.value: at for status, at in record.reached.items()},
        updated_at=update.updated_at,
    )


class EcuSoftwarePublic(ApiModel):
    ecu_serial: str
    hardware_id: str
    version: str
    target: str | None = Field(description="The image's target path; None: factory software")
    sha256: str | None
    release_counter: int | None
    campaign_id: UUID | None
    installed_at: datetime | None
    source: Literal["report", "factory"]


class SoftwareChangePublic(ApiModel):
    ecu_serial: str
    hardware_id: str
    version: str
    target: str | None
    campaign_id: UUID | None
    installed_at: datetime
    recorded_at: datetime


class SoftwarePublic(ApiModel):
    vin: str
    software_id: str = Field(description="Digest of the installed set (RXSWIN-style)")
    ecus: list[EcuSoftwarePublic]
    history: list[SoftwareChangePublic] = Field(description="Recent changes, newest first")


def software_public(current: VehicleSoftware, changes: list[SoftwareChange]) -> SoftwarePublic:
    return SoftwarePublic(
        vin=current.vin,
        software_id=current.software_id,
        ecus=[
            EcuSoftwarePublic(
                ecu_serial=e.ecu_serial,
                hardware_id=e.hardware_id,
                version=e.version,
                target=e.target_path,
                sha256=e.sha256,
                release_counter=e.release_counter,
                campaign_id=e.campaign_id,
                installed_at=e.installed_at,
                source="report" if e.source == "report" else "factory",
            )
            for e in current.ecus
        ],
        history=[
            SoftwareChangePublic(
                ecu_serial=c.ecu_serial,
                hardware_id=c.hardware_id,
                version=c.version,
                target=c.target_path,
                campaign_id=c.campaign_id,
                installed_at=c.installed_at,
                recorded_at=c.recorded_at,
            )
            for c in changes
        ],
    )


class EcuKeyIn(ApiModel):
    public_key: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="Raw ed25519 key, hex")


class EcuKeyPublic(ApiModel):
    vin: str
    keyid: str
    registered_at: datetime
