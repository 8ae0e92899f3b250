"""Response and request models. Table rows are never returned directly."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.vin import VIN_PATTERN


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


class FieldErrorPublic(ApiModel):
    loc: list[str | int] = Field(
        description="Where: body, query, path or header, then the field path",
        examples=[["body", "model_year"]],
    )
    msg: str = Field(examples=["Input should be greater than or equal to 1980"])


class ErrorBody(ApiModel):
    """Every error the API answers: a stable machine-readable ``code`` and a message."""

    code: str = Field(examples=["vehicle_not_found"])
    message: str
    errors: list[FieldErrorPublic] | None = Field(
        default=None,
        description="Only with code invalid_request: one entry per invalid field",
    )


VIN_DESCRIPTION = "ISO 3779 VIN: 17 characters, digits and capitals without I, O, Q"
VIN_EXAMPLE = "WVWZZZ1JZXW000001"
VinStr = Annotated[
    str, Field(pattern=VIN_PATTERN, description=VIN_DESCRIPTION, examples=[VIN_EXAMPLE])
]
# No C0/C1 control characters: PostgreSQL cannot store NUL in text (it would answer 500), and
# escapes or line breaks in names only serve to garble logs and terminals.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]+$"
Label = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)]


class EcuIn(ApiModel):
    ecu_id: Label = Field(examples=["gateway"])
    hardware_id: Annotated[
        str,
        Field(min_length=1, max_length=128, pattern=NO_CONTROL_CHARACTERS, examples=["GW-4711-B"]),
    ]
    software_version: Label = Field(examples=["3.2.1"])


class EcuPublic(ApiModel):
    # Not EcuIn: input rules must not turn rows written by other paths (CSV import) into 500s.
    ecu_id: str = Field(examples=["gateway"])
    hardware_id: str = Field(examples=["GW-4711-B"])
    software_version: str = Field(examples=["3.2.1"])


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
