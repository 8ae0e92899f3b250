"""Request and response models of work orders, recall campaigns and warranty terms."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from api.schemas import NO_CONTROL_CHARACTERS, ApiModel

RECALL_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{2,31}$"
RecallCode = Annotated[str, Field(pattern=RECALL_CODE_PATTERN, examples=["VW-24-ID3-HV"])]
Serial = Annotated[
    str,
    Field(
        pattern=r"^[0-9A-HJ-NPR-Z]{6}$",
        description="VIN positions 12-17 (the serial), inclusive bound",
        examples=["000100"],
    ),
]
ModelYear = Annotated[int, Field(ge=1980, le=2100)]
Brand = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)]
LongText = Annotated[
    str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]+$")
]
Title = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)]
AlertIds = Annotated[list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Field(max_length=50)]


# -- recall campaigns ----------------------------------------------------------------------------


def _ordered(low: object, high: object, what: str) -> None:
    if low is not None and high is not None and low > high:  # type: ignore[operator]
        raise ValueError(f"{what}: from must not be after to")


class RecallCreate(ApiModel):
    code: RecallCode
    title: Title
    brand: Brand
    model: Brand | None = Field(default=None, description="None: every model of the brand")
    model_year_from: ModelYear | None = None
    model_year_to: ModelYear | None = None
    serial_from: Serial | None = None
    serial_to: Serial | None = None
    remedy: LongText
    active: bool = True

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        _ordered(self.model_year_from, self.model_year_to, "model_year")
        _ordered(self.serial_from, self.serial_to, "serial")
        return self


class RecallUpdate(ApiModel):
    """Only the fields sent change; ``null`` opens a bound or widens to every model."""

    title: Title | None = None
    model: Brand | None = None
    model_year_from: ModelYear | None = None
    model_year_to: ModelYear | None = None
    serial_from: Serial | None = None
    serial_to: Serial | None = None
    remedy: LongText | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        _ordered(self.model_year_from, self.model_year_to, "model_year")
        _ordered(self.serial_from, self.serial_to, "serial")
        if "title" in self.model_fields_set and self.title is None:
            raise ValueError("title cannot be cleared")
        if "remedy" in self.model_fields_set and self.remedy is None:
            raise ValueError("remedy cannot be cleared")
        if "active" in self.model_fields_set and self.active is None:
            raise ValueError("active cannot be cleared")
        return self


class RecallPublic(ApiModel):
    code: str
    title: str
    brand: str
    model: str | None
    model_year_from: int | None
    model_year_to: int | None
    serial_from: str | None
    serial_to: str | None
    remedy: str
    active: bool
    created_at: datetime
    updated_at: datetime


class RecallsPublic(ApiModel):
    data: list[RecallPublic]
    count: int


class WarrantyTermsIn(ApiModel):
    years: int = Field(ge=1, le=30)
    km: int | None = Field(default=None, ge=1, le=10_000_000, description="None: no limit")


class WarrantyTermsPublic(ApiModel):
    brand: str
    years: int
    km: int | None
    updated_at: datetime


class WarrantyTermsListPublic(ApiModel):
    data: list[WarrantyTermsPublic]
    count: int


# -- work orders ---------------------------------------------------------------------------------


class WorkOrderCreate(ApiModel):
    complaint: LongText = Field(description="What the customer reports, in their words")
    alert_ids: AlertIds | None = Field(
        default=None,
        description="Alerts of this car the work order is to close (default: the booking's)",
    )
    odometer_km: float | None = Field(
        default=None, ge=0, le=5_000_000, description="Read at check-in (default: telemetry)"
    )
    first_registered_on: date | None = Field(
        default=None,
        ge=date(1980, 1, 1),
        le=date(2100, 12, 31),
        description="From the registration document; starts the warranty (default: 1 January "
        "of the model year)",
    )


class WorkOrderLineCreate(ApiModel):
    kind: Literal["part", "labour"]
    code: Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)] = Field(
        description="Part number or labour operation code"
    )
    description: Annotated[str, Field(min_length=1, max_length=300, pattern=NO_CONTROL_CHARACTERS)]
    quantity: Decimal = Field(
        gt=0, le=10_000, max_digits=10, decimal_places=2, description="Labour: hours"
    )
    unit_price_cents: int = Field(ge=0, le=100_000_000, description="Labour: per hour")
    coverage: Literal["customer", "warranty", "recall", "goodwill"] = "customer"
    recall_code: RecallCode | None = Field(
        default=None, description="With coverage recall: the campaign this line remedies"
    )

    @model_validator(mode="after")
    def _recall(self) -> Self:
        if (self.coverage == "recall") != (self.recall_code is not None):
            raise ValueError("recall_code is required with coverage recall, and only then")
        return self


class WorkOrderClose(ApiModel):
    alert_ids: AlertIds | None = Field(
        default=None,
        description="Alerts to resolve on top of those named when the work order was opened",
    )


class RecallFoundPublic(ApiModel):
    code: str
    title: str
    remedy: str


class WarrantyDecisionPublic(ApiModel):
    status: Literal["covered", "expired_age", "expired_mileage", "mileage_unknown", "no_terms"]
    covered: bool
    starts_on: date
    start_basis: Literal["first_registration", "model_year"]
    expires_on: date | None
    km_limit: int | None
    odometer_km: float | None
    odometer_basis: Literal["workshop", "telemetry"] | None


class WorkOrderLinePublic(ApiModel):
    id: int
    kind: Literal["part", "labour"]
    code: str
    description: str
    quantity: Decimal
    unit_price_cents: int
    amount_cents: int
    coverage: Literal["customer", "warranty", "recall", "goodwill"]
    recall_code: str | None


class TotalsPublic(ApiModel):
    currency: str
    parts_cents: int
    labour_cents: int
    total_cents: int
    covered_cents: int = Field(description="Borne by warranty, recalls or goodwill")
    customer_cents: int = Field(description="What the customer pays")


class WorkOrderPublic(ApiModel):
    id: int
    booking_id: int
    vin: str
    centre_id: str
    status: Literal["open", "closed"]
    complaint: str
    odometer_km: float | None
    recalls: list[RecallFoundPublic] = Field(description="Open recalls found at opening")
    warranty: WarrantyDecisionPublic
    alert_ids: list[int]
    resolved_alert_ids: list[int] = Field(description="Alerts this work order resolved")
    parts: list[WorkOrderLinePublic]
    labour: list[WorkOrderLinePublic]
    totals: TotalsPublic
    opened_at: datetime
    closed_at: datetime | None
    updated_at: datetime
    revision: int


class WorkOrdersPublic(ApiModel):
    data: list[WorkOrderPublic]
    count: int
