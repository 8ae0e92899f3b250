"""The notifier: an outbox handler (consumer ``notifier``) that turns events into notifications
for the vehicle's owner, with one planned delivery per channel.

Who is told: the event's ``customer_id`` (a booking belongs to the customer who made it), else
the current owner of its ``vin`` -- and only if their ownership began no later than the event:
an alert of the previous owner's time is not the new owner's business (ADR 0006), and the
previous owner no longer owns the car. What is said: the topic's template, in the customer's
language and time zone. Exactly once: the handler runs in the consumer's transaction, and a
duplicate event (a second append of the same change) meets the dedupe key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from api.notifications.alert_templates import register_alert_templates
from api.notifications.booking_templates import register_booking_templates
from api.notifications.model import Channel
from api.notifications.offer_templates import register_offer_templates
from api.notifications.ota_templates import register_ota_templates
from api.notifications.quiet_hours import quiet_hours_of
from api.notifications.routing import Preferences, plan_deliveries
from api.notifications.store import NewNotification, insert_notification, told_about
from api.notifications.templates import RenderContext, TemplateRegistry
from api.notifications.texts import resolve_language
from diagnostics.outbox import OutboxConsumer, OutboxEvent
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms

log = logging.getLogger(__name__)

CONSUMER_NAME = "notifier"

_CUSTOMER_COLUMNS = (
    "c.id, c.email, c.phone, c.language, c.timezone, c.preferred_channels,"
    " c.quiet_hours_start, c.quiet_hours_end"
)


def default_templates() -> TemplateRegistry:
    """Alerts, bookings, work orders, software updates and offers."""
    registry = TemplateRegistry()
    register_alert_templates(registry)
    register_booking_templates(registry)
    register_ota_templates(registry)
    register_offer_templates(registry)
    return registry


@dataclass(frozen=True, slots=True)
class Recipient:
    customer_id: UUID
    language: str
    timezone: ZoneInfo
    preferences: Preferences


def customer_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # validated on input; a zone removed from tzdata since


def _recipient(row: asyncpg.Record) -> Recipient:
    zone = customer_zone(row["timezone"])
    start, end = row["quiet_hours_start"], row["quiet_hours_end"]
    return Recipient(
        customer_id=row["id"],
        language=resolve_language(row["language"]),
        timezone=zone,
        preferences=Preferences(
            channels=frozenset(Channel(c) for c in row["preferred_channels"]),
            email=row["email"],
            phone=row["phone"],
            quiet_hours=quiet_hours_of(start, end, zone),
        ),
    )


def event_vin(event: OutboxEvent) -> str | None:
    vin = event.vin or event.payload.get("vin")
    return vin if isinstance(vin, str) and vin else None


async def find_recipient(conn: asyncpg.Connection, event: OutboxEvent) -> Recipient | None:
    if event.customer_id is not None:
        row = await conn.fetchrow(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers c WHERE c.id = $1", event.customer_id
        )
        return _recipient(row) if row is not None else None
    vin = event_vin(event)
    if vin is None:
        return None
    row = await conn.fetchrow(
        f"""
        SELECT {_CUSTOMER_COLUMNS}
        FROM vehicle_ownership o JOIN customers c ON c.id = o.customer_id
        WHERE o.vin = $1 AND o.ended_at IS NULL AND o.started_at <= $2
        """,
        vin,
        event.occurred_at,
    )
    return _recipient(row) if row is not None else None


@dataclass
class NotifierStats:
    created: int = 0
    duplicates: int = 0
    no_recipient: int = 0
    nothing_to_tell: int = 0
    unknown_topic: int = 0


class Notifier:
    """The outbox handler. ``stats`` counts what became of each event."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, templates: TemplateRegistry | None = None):
        self._clock = clock
        self._templates = templates if templates is not None else default_templates()
        self.stats = NotifierStats()

    async def handle(self, conn: asyncpg.Connection, event: OutboxEvent) -> None:
        template = self._templates.get(event.topic)
        if template is None:
            self.stats.unknown_topic += 1
            return
        recipient = await find_recipient(conn, event)
        if recipient is None:
            self.stats.no_recipient += 1
            log.debug("notifier: nobody to tell about %s %s", event.topic, event.subject)
            return
        told = await told_about(conn, recipient.customer_id, event.subject)
        draft = template.render(event, RenderContext(recipient.language, recipient.timezone, told))
        if draft is None:
            self.stats.nothing_to_tell += 1
            return
        now = utc_from_ms(self._clock.now_ms())
        vin = event_vin(event)
        plans = plan_deliveries(
            recipient.preferences, draft.category, has_vehicle=vin is not None, now=now
        )
        created = await insert_notification(
            conn,
            NewNotification(
                customer_id=recipient.customer_id,
                vin=vin,
                topic=event.topic,
                subject=event.subject,
                outbox_id=event.id,
                language=recipient.language,
                draft=draft,
                created_at=now,
            ),
            plans,
        )
        if created is None:
            self.stats.duplicates += 1
        else:
            self.stats.created += 1


def notifier(
    pool: asyncpg.Pool,
    clock: Clock = SYSTEM_CLOCK,
    *,
    templates: TemplateRegistry | None = None,
) -> OutboxConsumer:
    """The ``notifier`` outbox consumer; the runtime runs ``consumer.run(stop)``."""
    return OutboxConsumer(pool, CONSUMER_NAME, Notifier(clock, templates))
