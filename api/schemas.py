"""Response and request models. Table rows are never returned directly."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VehiclePublic(ApiModel):
    vin: str = Field(examples=["WVWZZZ1JZXW000001"])
    brand: str
    model: str
    model_year: int
    powertrain: Literal["ice", "bev", "phev", "hev"]
    created_at: datetime
    revoked: bool
    last_seen_at: datetime | None = Field(
        description="Time of the newest sample received from the vehicle"
    )


class VehiclesPublic(ApiModel):
    data: list[VehiclePublic]
    count: int = Field(description="Total number of vehicles, regardless of paging")


class SignalValuePublic(ApiModel):
    value: bool | int | float | str | None
    ts: datetime = Field(description="When the vehicle sampled this value (UTC)")


class VehicleStatePublic(ApiModel):
    vin: str
    signals: dict[str, SignalValuePublic] = Field(
        description="Latest value of every signal the vehicle has sent, keyed by VSS path"
    )
    updated_at: datetime | None = Field(description="Newest sample time among the signals")


class ComponentHealth(ApiModel):
    status: Literal["ok", "error"]
    detail: str | None = None


class HealthPublic(ApiModel):
    status: Literal["ok", "degraded"]
    database: ComponentHealth
    broker: ComponentHealth


class ErrorBody(ApiModel):
    code: str
    message: str
