"""The seam between the delivery loop and a channel: one small Protocol per send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from api.notifications.model import Category, Channel


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One delivery, with what its channel needs to reach the customer."""

    delivery_id: int
    notification_id: int
    channel: Channel
    category: Category
    language: str
    title: str
    body: str
    vin: str | None
    email: str | None
    phone: str | None
    issued_at: datetime


class ChannelAdapter(Protocol):
    channel: Channel

    async def send(self, message: OutgoingMessage) -> None:
        """Hand ``message`` to the channel; return once it is accepted (SMTP 250, MQTT PUBACK).
        Raise :class:`api.notifications.errors.DeliveryError` when it is not."""
        ...

    async def aclose(self) -> None:
        """Release connections; the adapter may be used again afterwards (it reconnects)."""
        ...
