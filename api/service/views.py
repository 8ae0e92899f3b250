"""Service-network records to response models. The same models are the payloads of the outbox
events (``booking.*``, ``work_order.closed``), so a notification shows what the API shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from api.service.pricing import line_amount_cents
from api.service.recall_check import RecallCampaign
from api.service.records import BookingRecord, CentreRecord, VanRecord, WorkOrderRecord
from api.service.schemas import (
    BookingPublic,
    CentrePublic,
    OpeningHoursEntry,
    PositionIn,
    VanPublic,
)
from api.service.work_order_schemas import (
    RecallFoundPublic,
    RecallPublic,
    TotalsPublic,
    WarrantyDecisionPublic,
    WorkOrderLinePublic,
    WorkOrderPublic,
)


def local_iso(instant: datetime, timezone: str) -> str:
    return instant.astimezone(ZoneInfo(timezone)).isoformat()


def opening_hours_public(centre: CentreRecord) -> list[OpeningHoursEntry]:
    return [
        OpeningHoursEntry(weekday=h.weekday, opens=h.opens, closes=h.closes)
        for h in sorted(centre.hours, key=lambda h: (h.weekday, h.opens))
    ]


def centre_public(centre: CentreRecord) -> CentrePublic:
    return CentrePublic(
        id=centre.id,
        name=centre.name,
        brand=centre.brand,
        address=centre.address,
        lat=centre.lat,
        lon=centre.lon,
        timezone=centre.timezone,
        bays=centre.bays,
        skills=list(centre.skills),
        slot_minutes=centre.slot_minutes,
        active=centre.active,
        opening_hours=opening_hours_public(centre),
        created_at=centre.created_at,
        updated_at=centre.updated_at,
    )


def van_public(van: VanRecord) -> VanPublic:
    return VanPublic(
        id=van.id,
        name=van.name,
        home_centre_id=van.home_centre_id,
        range_km=van.range_km,
        skills=list(van.skills),
        slot_minutes=van.slot_minutes,
        active=van.active,
        created_at=van.created_at,
        updated_at=van.updated_at,
    )


def booking_public(b: BookingRecord) -> BookingPublic:
    location = (
        PositionIn(lat=b.service_lat, lon=b.service_lon)
        if b.service_lat is not None and b.service_lon is not None
        else None
    )
    return BookingPublic(
        id=b.id,
        vin=b.vin,
        customer_id=b.customer_id,
        kind="mobile" if b.van_id else "workshop",
        centre_id=b.centre_id,
        centre_name=b.centre_name,
        centre_address=b.centre_address,
        timezone=b.centre_timezone,
        van_id=b.van_id,
        van_name=b.van_name,
        location=location,
        slot_start=b.slot_start,
        slot_end=b.slot_end,
        local_slot_start=local_iso(b.slot_start, b.centre_timezone),
        required_skills=list(b.required_skills),
        status=b.status.value,
        source=b.source,  # the table's CHECK bounds it
        alert_id=b.alert_id,
        notes=b.notes,
        requested_at=b.requested_at,
        confirmed_at=b.confirmed_at,
        checked_in_at=b.checked_in_at,
        completed_at=b.completed_at,
        cancelled_at=b.cancelled_at,
        no_show_at=b.no_show_at,
        cancelled_by=b.cancelled_by,
        work_order_id=b.work_order_id,
        updated_at=b.updated_at,
        revision=b.revision,
    )


def booking_payload(b: BookingRecord) -> dict[str, Any]:
    """The ``booking.*`` outbox payload: the booking's public JSON."""
    return booking_public(b).model_dump(mode="json")


def recall_public(c: RecallCampaign) -> RecallPublic:
    return RecallPublic(
        code=c.code,
        title=c.title,
        brand=c.brand,
        model=c.model,
        model_year_from=c.model_year_from,
        model_year_to=c.model_year_to,
        serial_from=c.serial_from,
        serial_to=c.serial_to,
        remedy=c.remedy,
        active=c.active,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def work_order_public(w: WorkOrderRecord) -> WorkOrderPublic:
    lines = [
        WorkOrderLinePublic(
            id=line.id,
            kind=line.kind,
            code=line.code,
            description=line.description,
            quantity=line.quantity,
            unit_price_cents=line.unit_price_cents,
            amount_cents=line_amount_cents(line.quantity, line.unit_price_cents),
            coverage=line.coverage,
            recall_code=line.recall_code,
        )
        for line in w.lines
    ]
    return WorkOrderPublic(
        id=w.id,
        booking_id=w.booking_id,
        vin=w.vin,
        centre_id=w.centre_id,
        status=w.status,  # the table's CHECK bounds it
        complaint=w.complaint,
        odometer_km=w.odometer_km,
        recalls=[RecallFoundPublic.model_validate(r) for r in w.recalls],
        warranty=WarrantyDecisionPublic.model_validate(w.warranty),
        alert_ids=list(w.alert_ids),
        resolved_alert_ids=list(w.resolved_alert_ids),
        parts=[line for line in lines if line.kind == "part"],
        labour=[line for line in lines if line.kind == "labour"],
        totals=TotalsPublic(
            currency=w.currency,
            parts_cents=w.parts_total_cents,
            labour_cents=w.labour_total_cents,
            total_cents=w.parts_total_cents + w.labour_total_cents,
            covered_cents=w.covered_total_cents,
            customer_cents=w.customer_total_cents,
        ),
        opened_at=w.opened_at,
        closed_at=w.closed_at,
        updated_at=w.updated_at,
        revision=w.revision,
    )


def work_order_payload(w: WorkOrderRecord) -> dict[str, Any]:
    return work_order_public(w).model_dump(mode="json")
