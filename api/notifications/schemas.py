"""Response models of the notification routes. Table rows are never returned directly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from api.notifications.store import DeliveryRecord, NotificationRecord
from api.schemas import ApiModel

ChannelName = Literal["app", "email", "in_car", "sms"]
DeliveryStateName = Literal["queued", "sent", "delivered", "read", "failed", "suppressed"]
CategoryName = Literal["service_critical", "informational", "promotion"]


class DeliveryPublic(ApiModel):
    channel: ChannelName
    state: DeliveryStateName
    reason: str | None = Field(
        description="Why it was suppressed or failed (channel_not_preferred, no_address, "
        "no_sms_provider, retries_exhausted, ...), or why a queued one waits (quiet_hours)",
        examples=["quiet_hours"],
    )
    attempts: int
    next_attempt_at: datetime | None = Field(description="Queued: when it will be sent")
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    suppressed_at: datetime | None


class NotificationPublic(ApiModel):
    id: int = Field(description="Also the SSE event id (Last-Event-ID)")
    topic: str = Field(examples=["alert.opened"])
    subject: str = Field(examples=["alert:42"])
    vin: str | None
    category: CategoryName
    language: str
    title: str
    body: str
    data: dict[str, Any] = Field(description="Links: alert_id, booking_id, work_order_id, ...")
    created_at: datetime
    read_at: datetime | None
    deliveries: list[DeliveryPublic]


class NotificationsPublic(ApiModel):
    data: list[NotificationPublic]
    count: int = Field(description="Notifications matching, regardless of paging")


def delivery_public(record: DeliveryRecord) -> DeliveryPublic:
    return DeliveryPublic(
        channel=record.channel.value,
        state=record.state.value,
        reason=record.reason,
        attempts=record.attempts,
        next_attempt_at=record.next_attempt_at,
        sent_at=record.sent_at,
        delivered_at=record.delivered_at,
        read_at=record.read_at,
        failed_at=record.failed_at,
        suppressed_at=record.suppressed_at,
    )


def notification_public(record: NotificationRecord) -> NotificationPublic:
    return NotificationPublic(
        id=record.id,
        topic=record.topic,
        subject=record.subject,
        vin=record.vin,
        category=record.category.value,
        language=record.language,
        title=record.title,
        body=record.body,
        data=dict(record.data),
        created_at=record.created_at,
        read_at=record.read_at,
        deliveries=[delivery_public(d) for d in record.deliveries],
    )
