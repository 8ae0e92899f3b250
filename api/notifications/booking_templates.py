"""Templates for the service network's events: the booking lifecycle (``booking.suggested``,
``confirmed``, ``checked_in``, ``completed``, ``cancelled``, ``no_show``) and
``work_order.closed``. All informational; slot times are shown in the customer's time zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from api.notifications.model import Category
from api.notifications.templates import (
    Draft,
    RenderContext,
    TemplateRegistry,
    default_dedupe_key,
    parse_payload,
)
from api.notifications.texts import format_when, text
from diagnostics.outbox import OutboxEvent

BOOKING_TOPICS = (
    "booking.suggested",
    "booking.confirmed",
    "booking.checked_in",
    "booking.completed",
    "booking.cancelled",
    "booking.no_show",
)


def _centre_name(values: Any) -> Any:
    """Accept ``centre_name``, or a ``centre`` given as a name or as ``{"name": ...}``."""
    if isinstance(values, dict) and not values.get("centre_name"):
        centre = values.get("centre")
        if isinstance(centre, dict):
            centre = centre.get("name")
        if isinstance(centre, str):
            values = {**values, "centre_name": centre}
    return values


class BookingPayload(BaseModel):
    """The booking's public JSON; fields not needed here are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: int
    vin: str | None = None
    status: str | None = None
    centre_name: str | None = None
    slot_start: datetime | None = None
    slot_end: datetime | None = None
    alert_id: int | None = None

    _centre = model_validator(mode="before")(_centre_name)


class WorkOrderPayload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: int
    vin: str | None = None
    booking_id: int | None = None
    alert_id: int | None = None
    alert_ids: list[int] = []
    resolved_alert_ids: list[int] = []
    centre_name: str | None = None

    _centre = model_validator(mode="before")(_centre_name)


class BookingTemplate:
    """One booking step. The body names the centre and the slot start."""

    def __init__(self, step: str) -> None:
        self._step = step

    def render(self, event: OutboxEvent, context: RenderContext) -> Draft:
        booking = parse_payload(BookingPayload, event)
        lang = context.language
        centre = (booking.centre_name or "").strip() or text("booking.centre.unknown", lang)
        start = (
            format_when(booking.slot_start, context.timezone, lang)
            if booking.slot_start is not None
            else "—"
        )
        return Draft(
            category=Category.INFORMATIONAL,
            title=text(f"booking.{self._step}.title", lang),
            body=text(f"booking.{self._step}.body", lang, centre=centre, start=start),
            data={
                "booking_id": booking.id,
                "alert_id": booking.alert_id,
                "status": booking.status,
                "slot_start": booking.slot_start.isoformat() if booking.slot_start else None,
                "slot_end": booking.slot_end.isoformat() if booking.slot_end else None,
            },
            dedupe_key=default_dedupe_key(event),
        )


class WorkOrderClosed:
    def render(self, event: OutboxEvent, context: RenderContext) -> Draft:
        order = parse_payload(WorkOrderPayload, event)
        alert_ids = sorted({*order.alert_ids, *([order.alert_id] if order.alert_id else [])})
        return Draft(
            category=Category.INFORMATIONAL,
            title=text("work_order.closed.title", context.language),
            body=text("work_order.closed.body", context.language, number=f"#{order.id}"),
            data={
                "work_order_id": order.id,
                "booking_id": order.booking_id,
                "alert_ids": alert_ids,
                "resolved_alert_ids": order.resolved_alert_ids,
            },
            dedupe_key=default_dedupe_key(event),
        )


def register_booking_templates(registry: TemplateRegistry) -> None:
    for topic in BOOKING_TOPICS:
        registry.register(topic, BookingTemplate(topic.split(".", 1)[1]))
    registry.register("work_order.closed", WorkOrderClosed())
