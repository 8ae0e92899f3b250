"""Request and response models of centres, vans, slot search and bookings. Request bodies
forbid unknown fields (``ApiModel``)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, Field, field_validator, model_validator

from api.customer_schemas import TimeZone
from api.schemas import NO_CONTROL_CHARACTERS, ApiModel, VinStr
from api.service.slots import OpeningInterval, check_opening_hours

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, examples=["service-001"])]
Skill = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{1,39}$",
        description="A repair skill: ev_high_voltage, tyres, brakes, diagnostics, bodywork, ...",
        examples=["ev_high_voltage"],
    ),
]
Skills = Annotated[list[Skill], Field(max_length=20, description="No repeats")]
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)]
BrandName = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)]
Address = Annotated[str, Field(min_length=1, max_length=300, pattern=NO_CONTROL_CHARACTERS)]
Notes = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
SlotMinutes = Annotated[
    int, Field(ge=15, le=480, multiple_of=15, description="Length of one slot, minutes")
]
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_ID = 2**63 - 1


def _bounded(value: datetime) -> datetime:
    """An instant of this century, in UTC (far-off dates would overflow date arithmetic)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("date out of range") from exc
    if not EARLIEST <= utc < LATEST:
        raise ValueError("must lie between 2000 and 2100")
    return utc


Instant = Annotated[AwareDatetime, AfterValidator(_bounded)]
BookingStatusName = Literal[
    "requested", "confirmed", "checked_in", "completed", "cancelled", "no_show"
]


def _not_cleared(model: ApiModel, nullable: frozenset[str] = frozenset()) -> None:
    """PATCH bodies: ``null`` clears only optional columns; the others must keep a value."""
    for name in model.model_fields_set - nullable:
        if getattr(model, name) is None:
            raise ValueError(f"{name} cannot be cleared")


def _unique(values: list[str] | None) -> list[str] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError("each skill at most once")
    return values


class OpeningHoursEntry(ApiModel):
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 = Monday ... 7 = Sunday")
    opens: time = Field(description="Local time (the centre's time zone)", examples=["07:30"])
    closes: time = Field(examples=["18:00"])

    def interval(self) -> OpeningInterval:
        return OpeningInterval(self.weekday, self.opens, self.closes)


OpeningHours = Annotated[list[OpeningHoursEntry], Field(max_length=50)]


def _valid_hours(hours: list[OpeningHoursEntry] | None) -> list[OpeningHoursEntry] | None:
    if hours is not None:
        check_opening_hours(h.interval() for h in hours)
    return hours


class CentreCreate(ApiModel):
    id: Slug
    name: Text
    brand: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)] | None
    ) = None
    address: Address
    lat: Latitude
    lon: Longitude
    timezone: TimeZone = "Europe/Berlin"
    bays: int = Field(ge=1, le=200, description="Bookings the centre takes in parallel")
    skills: Skills = Field(default_factory=list)
    slot_minutes: SlotMinutes = 60
    opening_hours: OpeningHours = Field(default_factory=list)

    _skills = field_validator("skills")(_unique)
    _hours = field_validator("opening_hours")(_valid_hours)


class CentreUpdate(ApiModel):
    """Only the fields sent change; ``opening_hours`` replaces the whole week."""

    name: Text | None = None
    brand: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=NO_CONTROL_CHARACTERS)] | None
    ) = None
    address: Address | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    timezone: TimeZone | None = None
    bays: int | None = Field(default=None, ge=1, le=200)
    skills: Skills | None = None
    slot_minutes: SlotMinutes | None = None
    opening_hours: OpeningHours | None = None
    active: bool | None = None

    _skills = field_validator("skills")(_unique)
    _hours = field_validator("opening_hours")(_valid_hours)

    @model_validator(mode="after")
    def _required_stay(self) -> Self:
        _not_cleared(self, frozenset({"brand"}))
        return self


class CentrePublic(ApiModel):
    id: str
    name: str
    brand: str | None
    address: str
    lat: float
    lon: float
    timezone: str
    bays: int
    skills: list[str]
    slot_minutes: int
    active: bool
    opening_hours: list[OpeningHoursEntry]
    created_at: datetime
    updated_at: datetime


class CentresPublic(ApiModel):
    data: list[CentrePublic]
    count: int


class VanCreate(ApiModel):
    id: Slug
    name: Text
    home_centre_id: Slug
    range_km: float = Field(gt=0, le=500, description="How far from its home centre it goes")
    skills: Skills = Field(default_factory=list)
    slot_minutes: SlotMinutes = 120

    _skills = field_validator("skills")(_unique)


class VanUpdate(ApiModel):
    name: Text | None = None
    home_centre_id: Slug | None = None
    range_km: float | None = Field(default=None, gt=0, le=500)
    skills: Skills | None = None
    slot_minutes: SlotMinutes | None = None
    active: bool | None = None

    _skills = field_validator("skills")(_unique)

    @model_validator(mode="after")
    def _required_stay(self) -> Self:
        _not_cleared(self)
        return self


class VanPublic(ApiModel):
    id: str
    name: str
    home_centre_id: str
    range_km: float
    skills: list[str]
    slot_minutes: int
    active: bool
    created_at: datetime
    updated_at: datetime


class VansPublic(ApiModel):
    data: list[VanPublic]
    count: int


# -- slot search ---------------------------------------------------------------------------------


class PositionPublic(ApiModel):
    lat: float
    lon: float
    source: Literal["query", "vehicle"] = Field(
        description="Given in the query, or the vehicle's last known position"
    )
    ts: datetime | None = Field(description="When the vehicle was there (source vehicle)")


class SlotPublic(ApiModel):
    start: datetime
    end: datetime
    local_start: str = Field(
        description="Start in the centre's local time, ISO 8601 with offset",
        examples=["2026-11-25T08:30:00+01:00"],
    )
    free: int = Field(description="Places still free in this slot")
    capacity: int


class ServiceOptionPublic(ApiModel):
    """A workshop, or a mobile van that comes to the car, with its free slots."""

    kind: Literal["workshop", "mobile"]
    centre_id: str
    centre_name: str
    van_id: str | None
    van_name: str | None
    address: str = Field(description="The workshop's address (mobile: the van's home centre)")
    lat: float
    lon: float
    timezone: str
    distance_km: float = Field(
        description="Great-circle distance from the position to the workshop (mobile: the "
        "van's drive from its home centre)"
    )
    skills: list[str]
    opening_hours: list[OpeningHoursEntry]
    slots: list[SlotPublic]


class SlotSearchPublic(ApiModel):
    origin: PositionPublic
    data: list[ServiceOptionPublic] = Field(description="Nearest first")
    count: int = Field(description="Suitable workshops and vans within the radius")


# -- bookings ------------------------------------------------------------------------------------


class PositionIn(ApiModel):
    lat: Latitude
    lon: Longitude


class BookingCreate(ApiModel):
    vin: VinStr
    centre_id: Slug | None = Field(default=None, description="A workshop; or give van_id")
    van_id: Slug | None = Field(default=None, description="Mobile service by this van")
    slot_start: Instant = Field(
        description="One of the slots `GET /v1/service/slots` lists (with a UTC offset)"
    )
    required_skills: Skills = Field(default_factory=list)
    alert_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="The alert this is about"
    )
    notes: Notes | None = None
    location: PositionIn | None = Field(
        default=None,
        description="Mobile service: where the van should come (default: the car's last "
        "known position)",
    )

    _skills = field_validator("required_skills")(_unique)

    @model_validator(mode="after")
    def _one_provider(self) -> Self:
        if (self.centre_id is None) == (self.van_id is None):
            raise ValueError("give exactly one of centre_id and van_id")
        if self.location is not None and self.van_id is None:
            raise ValueError("location is for mobile service (van_id)")
        return self


class BookingPublic(ApiModel):
    id: int
    vin: str
    customer_id: UUID | None
    kind: Literal["workshop", "mobile"]
    centre_id: str
    centre_name: str
    centre_address: str
    timezone: str
    van_id: str | None
    van_name: str | None
    location: PositionIn | None = Field(description="Mobile service: where the van comes")
    slot_start: datetime
    slot_end: datetime
    local_slot_start: str = Field(description="Slot start in the centre's local time")
    required_skills: list[str]
    status: BookingStatusName
    source: Literal["customer", "suggestion", "service_center", "admin"]
    alert_id: int | None
    notes: str | None
    requested_at: datetime
    confirmed_at: datetime | None
    checked_in_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    no_show_at: datetime | None
    cancelled_by: Literal["customer", "service_center", "fleet_admin", "system"] | None
    work_order_id: int | None
    updated_at: datetime
    revision: int


class BookingsPublic(ApiModel):
    data: list[BookingPublic]
    count: int
