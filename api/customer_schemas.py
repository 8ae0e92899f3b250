"""Request and response models of the customer platform: auth, customers, consent, ownership,
GDPR erasure and the overview (the GDPR export, which embeds other packages' public models, is
``api.routes.me.CustomerExportPublic``). Table rows are never returned directly."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal, Self
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, model_validator

from api.schemas import NO_CONTROL_CHARACTERS, ApiModel, SignalValuePublic, VehiclePublic
from api.security.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

Channel = Literal["app", "email", "in_car", "sms"]
PurposeName = Literal["location", "diagnostics_sharing", "marketing", "ota_auto_install"]
ConsentSourceName = Literal["app", "web", "dealer", "in_car"]
RoleName = Literal["customer", "service_center", "fleet_admin"]


def _known_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("unknown IANA time zone") from exc
    return name


# Deliberately loose (RFC 5322 allows much more); the address is confirmed by mail, not regex.
_EMAIL_PATTERN = r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$"
_ZONE_PATTERN = r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+){0,2}$"
_CLIENT_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,63}$"
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        pattern=_EMAIL_PATTERN,
        examples=["ada@example.com"],
    ),
]
Name = Annotated[str, Field(max_length=100, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")]
Phone = Annotated[
    str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164", examples=["+4915112345678"])
]
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
Language = Annotated[
    str,
    Field(
        pattern=r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$",
        description="BCP 47 tag",
        examples=["de-DE"],
    ),
]
TimeZone = Annotated[
    str,
    Field(max_length=64, pattern=_ZONE_PATTERN, examples=["Europe/Berlin"]),
    AfterValidator(_known_timezone),
]
Channels = Annotated[
    list[Channel],
    Field(min_length=1, max_length=4, description="In order of preference, no repeats"),
]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


def _default_channels() -> list[Channel]:
    return ["app"]


class QuietHours(ApiModel):
    """No notifications between ``start`` and ``end`` in the customer's time zone (may span
    midnight: 22:00 to 07:00)."""

    start: time = Field(examples=["22:00"])
    end: time = Field(examples=["07:00"])


class _ProfileFields(ApiModel):
    @model_validator(mode="after")
    def _no_repeated_channels(self) -> Self:
        channels = getattr(self, "preferred_channels", None)
        if channels is not None and len(set(channels)) != len(channels):
            raise ValueError("preferred_channels: each channel at most once")
        return self


class CustomerCreate(_ProfileFields):
    email: Email
    password: Password | None = Field(
        default=None, description="Initial password for the password grant; omit for none"
    )
    given_name: Name = ""
    family_name: Name = ""
    phone: Phone | None = None
    address_line: Text | None = None
    postal_code: Annotated[str, Field(max_length=16, pattern=r"^[A-Za-z0-9 -]+$")] | None = None
    city: Text | None = None
    country: Country | None = None
    language: Language = "en"
    preferred_channels: Channels = Field(default_factory=_default_channels)
    quiet_hours: QuietHours | None = None
    timezone: TimeZone = "UTC"


_REQUIRED_PROFILE_FIELDS = (
    "email",
    "given_name",
    "family_name",
    "language",
    "preferred_channels",
    "timezone",
)


class CustomerUpdate(_ProfileFields):
    """Only the fields present change; ``null`` clears an optional one."""

    email: Email | None = None
    given_name: Name | None = None
    family_name: Name | None = None
    phone: Phone | None = None
    address_line: Text | None = None
    postal_code: Annotated[str, Field(max_length=16, pattern=r"^[A-Za-z0-9 -]+$")] | None = None
    city: Text | None = None
    country: Country | None = None
    language: Language | None = None
    preferred_channels: Channels | None = None
    quiet_hours: QuietHours | None = None
    timezone: TimeZone | None = None

    @model_validator(mode="after")
    def _required_fields_not_cleared(self) -> Self:
        for name in _REQUIRED_PROFILE_FIELDS:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class CustomerPublic(ApiModel):
    id: UUID
    email: str
    given_name: str
    family_name: str
    phone: str | None
    address_line: str | None
    postal_code: str | None
    city: str | None
    country: str | None
    language: str
    preferred_channels: list[str]
    quiet_hours: QuietHours | None
    timezone: str
    created_at: datetime
    updated_at: datetime


class CustomersPublic(ApiModel):
    data: list[CustomerPublic]
    count: int = Field(description="Total number of customers, regardless of paging")


# -- consent -----------------------------------------------------------------------------------


class ConsentStatePublic(ApiModel):
    purpose: PurposeName
    granted: bool = Field(description="False also when never decided: consent is opt-in")
    source: ConsentSourceName | None = Field(description="Where the last decision was made")
    changed_at: datetime | None


class ConsentRecordPublic(ApiModel):
    id: int
    purpose: PurposeName
    granted: bool
    source: ConsentSourceName
    recorded_at: datetime


class ConsentsPublic(ApiModel):
    current: list[ConsentStatePublic] = Field(description="Every purpose, decided or not")
    history: list[ConsentRecordPublic] = Field(description="Changes, newest first (paged)")
    history_count: int


class ConsentUpdate(ApiModel):
    source: ConsentSourceName = Field(description="Where the customer made the decision")
    purposes: Annotated[dict[PurposeName, bool], Field(min_length=1)] = Field(
        description="Purposes to grant (true) or withdraw (false); others stay as they are",
        examples=[{"location": True, "marketing": False}],
    )


# -- vehicles and ownership ----------------------------------------------------------------------


class OwnerLink(ApiModel):
    customer_id: UUID
    source: Literal["admin", "dealer"] = Field(
        default="admin", description="Which flow linked the vehicle (admin tool or dealer)"
    )


class OwnershipPeriodPublic(ApiModel):
    vin: str
    customer_id: UUID
    source: Literal["admin", "dealer"]
    started_at: datetime
    ended_at: datetime | None = Field(description="Null while the period is open")


class OwnershipHistoryPublic(ApiModel):
    vin: str
    periods: list[OwnershipPeriodPublic] = Field(description="Oldest first")


class SubscriptionPublic(ApiModel):
    id: int
    vin: str
    plan: str
    status: Literal["trial", "active", "cancelled", "expired"]
    started_at: datetime
    renews_at: datetime | None
    ends_at: datetime | None


class EntitlementPublic(ApiModel):
    id: int
    vin: str
    feature: str = Field(examples=["heated_seats"])
    kind: Literal["subscription", "purchase", "trial"]
    valid_from: datetime
    valid_until: datetime | None


class VehicleHealthPublic(ApiModel):
    """From the vehicle's active alerts (diagnostics)."""

    status: Literal["ok", "attention", "critical"]
    open_alerts: int


class MyVehiclePublic(ApiModel):
    vehicle: VehiclePublic
    owned_since: datetime = Field(description="Data of this vehicle is visible from here on")
    latest_state: dict[str, SignalValuePublic] = Field(
        description="Latest value of each signal sampled since `owned_since`, by VSS path"
    )
    health: VehicleHealthPublic | None = Field(description="Null until diagnostics reports")
    subscriptions: list[SubscriptionPublic]
    entitlements: list[EntitlementPublic] = Field(description="Active now")


class MyVehiclesPublic(ApiModel):
    data: list[MyVehiclePublic]
    count: int


# -- the overview's summaries (OTA and offers stay empty until issues 9 and 10 fill them) --------


class AlertSummary(ApiModel):
    id: int
    vin: str
    type: str = Field(examples=["brake_pad_wear"])
    severity: Literal["info", "warning", "critical"]
    status: Literal["open", "acknowledged", "resolved"]
    predicted_failure_at: datetime | None
    confidence: float | None
    created_at: datetime


class OtaStatusSummary(ApiModel):
    vin: str
    campaign_id: str
    target_version: str
    state: Literal[
        "offered", "downloading", "downloaded", "installing", "installed", "failed", "rolled_back"
    ]
    updated_at: datetime


class BookingSummary(ApiModel):
    id: int
    vin: str
    centre_id: str
    status: Literal["requested", "confirmed", "checked_in", "completed", "cancelled", "no_show"]
    slot_start: datetime
    slot_end: datetime


class OfferSummary(ApiModel):
    id: UUID
    title: str
    vin: str | None
    code: str
    valid_until: datetime | None


class NotificationSummary(ApiModel):
    id: int
    channel: Channel
    title: str
    state: Literal["queued", "sent", "delivered", "read"]
    created_at: datetime


class OverviewPublic(ApiModel):
    """The 720-degree view: everything about one customer in one response."""

    customer: CustomerPublic
    consents: list[ConsentStatePublic]
    vehicles: list[MyVehiclePublic]
    entitlements: list[EntitlementPublic] = Field(description="Of all vehicles, active now")
    alerts: list[AlertSummary] = Field(description="Open alerts with predictions (issue 8)")
    ota: list[OtaStatusSummary] = Field(description="Update status per vehicle (issue 9)")
    bookings: list[BookingSummary] = Field(
        description="Service bookings, newest slot first (the most recent)"
    )
    offers: list[OfferSummary] = Field(description="Consented offers (issue 10)")
    notifications: list[NotificationSummary] = Field(description="The most recent, newest first")
    generated_at: datetime


# -- GDPR ----------------------------------------------------------------------------------------


class TelemetryLinkPublic(ApiModel):
    vin: str
    start: datetime
    end: datetime | None
    href: str = Field(description="Where the samples of this period can be read")


class ErasurePublic(ApiModel):
    customer_id: UUID
    erased_at: datetime
    vehicles_unlinked: list[str]
    consent_records_anonymised: int = Field(
        description="Kept without the customer's identity, as proof of consent (GDPR art. 7(1))"
    )
    bookings_anonymised: int = Field(
        description="Kept as the service centres' records of the cars, without the person "
        "(notes and the van's destination cleared, visits not begun cancelled)"
    )


# -- auth ----------------------------------------------------------------------------------------


class TokenPublic(ApiModel):
    """RFC 6749 section 5.1."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the RFC 6749 type, not a secret)
    expires_in: int = Field(description="Seconds until the token expires")
    role: RoleName


class ClientCreate(ApiModel):
    client_id: Annotated[str, Field(pattern=_CLIENT_ID_PATTERN, examples=["sc-berlin-1"])]
    name: Text
    role: Literal["service_center", "fleet_admin"]
    centres: Annotated[
        list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]], Field(max_length=100)
    ] = Field(default=[], description="Required for service_center: the centre ids it acts for")

    @model_validator(mode="after")
    def _centres_for_service_centres(self) -> Self:
        if self.role == "service_center" and not self.centres:
            raise ValueError("a service_center client needs at least one centre")
        return self


class ClientPublic(ApiModel):
    client_id: str
    name: str
    role: RoleName
    centres: list[str]
    created_at: datetime
    disabled_at: datetime | None


class ClientCreated(ClientPublic):
    client_secret: str = Field(description="Shown once; only a hash is stored")
