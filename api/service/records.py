"""Rows of the service-network tables as values (the stores build them; views map them to
response models). Table rows are never returned by the API directly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from api.service.lifecycle import OPEN_STATUSES, BookingStatus
from api.service.pricing import Coverage, LineKind
from api.service.slots import OpeningInterval


@dataclass(frozen=True, slots=True)
class CentreRecord:
    id: str
    name: str
    brand: str | None
    address: str
    lat: float
    lon: float
    timezone: str
    bays: int
    skills: tuple[str, ...]
    slot_minutes: int
    active: bool
    created_at: datetime
    updated_at: datetime
    hours: tuple[OpeningInterval, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class VanRecord:
    id: str
    name: str
    home_centre_id: str
    range_km: float
    skills: tuple[str, ...]
    slot_minutes: int
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BookingRecord:
    id: int
    vin: str
    customer_id: UUID | None
    centre_id: str
    van_id: str | None
    service_lat: float | None
    service_lon: float | None
    slot_start: datetime
    slot_end: datetime
    required_skills: tuple[str, ...]
    status: BookingStatus
    source: str
    alert_id: int | None
    notes: str | None
    requested_at: datetime
    confirmed_at: datetime | None
    checked_in_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    no_show_at: datetime | None
    cancelled_by: str | None
    updated_at: datetime
    revision: int
    # Joined for display and for notifications: where and with whom.
    centre_name: str
    centre_address: str
    centre_timezone: str
    van_name: str | None
    work_order_id: int | None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class WorkOrderLine:
    id: int
    kind: LineKind
    code: str
    description: str
    quantity: Decimal
    unit_price_cents: int
    coverage: Coverage
    recall_code: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WorkOrderRecord:
    id: int
    booking_id: int
    vin: str
    centre_id: str
    status: str
    complaint: str
    odometer_km: float | None
    recalls: list[dict[str, Any]]
    warranty: dict[str, Any]
    alert_ids: tuple[int, ...]
    resolved_alert_ids: tuple[int, ...]
    currency: str
    parts_total_cents: int
    labour_total_cents: int
    covered_total_cents: int
    customer_total_cents: int
    opened_at: datetime
    closed_at: datetime | None
    updated_at: datetime
    revision: int
    lines: tuple[WorkOrderLine, ...] = ()
