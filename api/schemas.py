"""Response and request models. Table rows are never returned directly."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

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


VinStr = Annotated[
    str,
    Field(
        pattern="^[0-9A-HJ-NPR-Z]{17}$",
        description="ISO 3779 VIN: 17 characters, digits and capitals without I, O, Q",
        examples=["WVWZZZ1JZXW000001"],
    ),
]
Label = Annotated[str, Field(min_length=1, max_length=64)]


class EcuIn(ApiModel):
    ecu_id: Label = Field(examples=["gateway"])
    hardware_id: Annotated[str, Field(min_length=1, max_length=128, examples=["GW-4711-B"])]
    software_version: Label = Field(examples=["3.2.1"])


class EcuPublic(EcuIn):
    pass


class VehicleCreate(ApiModel):
    vin: VinStr
    brand: Label
    model: Label
    model_year: Annotated[int, Field(ge=1980, le=2100)]
    powertrain: Literal["ice", "bev", "phev", "hev"]
    ecus: Annotated[list[EcuIn], Field(max_length=64)] = []


class CredentialsPublic(ApiModel):
    username: str = Field(description="The VIN: also the MQTT client id")
    password: str = Field(description="Shown once; only a hash is stored")


class VehicleCreated(ApiModel):
    vin: str
    credentials: CredentialsPublic


class VehicleDetailPublic(VehiclePublic):
    ecus: list[EcuPublic]
    online: bool | None = Field(description="Connection state; null before the first report")
    last_connected_at: datetime | None
    last_disconnected_at: datetime | None
    revoked_at: datetime | None
    credentials_rotated_at: datetime | None


class RevocationPublic(ApiModel):
    vin: str
    revoked_at: datetime


class CertificateRequest(ApiModel):
    csr_pem: Annotated[str | None, Field(max_length=16_384)] = Field(
        default=None,
        description="PKCS#10 request with CN = VIN (the private key stays in the car). "
        "Omit to have a key generated (for test benches and simulators).",
    )


class CertificatePublic(ApiModel):
    vin: str
    serial: str = Field(description="Decimal serial number")
    certificate_pem: str
    private_key_pem: str | None = Field(description="Only when no CSR was given; shown once")
    ca_certificate_pem: str
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str


class RawPointPublic(ApiModel):
    ts: datetime
    value: bool | int | float | str | None


class BucketPointPublic(ApiModel):
    ts: datetime = Field(description="Start of the bucket (UTC)")
    min: float
    avg: float
    max: float
    samples: int


class SeriesPublic(ApiModel):
    signal: str
    points: list[RawPointPublic] | list[BucketPointPublic]


class TelemetryHistoryPublic(ApiModel):
    vin: str
    start: datetime = Field(description="Start of the answered range (widened to whole buckets)")
    end: datetime = Field(description="End of the answered range, exclusive")
    bucket: Literal["1m", "1h"] | None
    series: list[SeriesPublic]
    truncated: bool = Field(description="True when the row limit cut the answer: narrow the range")
