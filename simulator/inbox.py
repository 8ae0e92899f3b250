"""The car's notification inbox: what ``notify`` commands showed the driver (issue 7, in-car
channel). The dispatcher acknowledges each one with a ``command_ack`` event, which is how the
cloud learns that the notification reached the car (delivery state ``delivered``)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from protocol.clock import Clock
from protocol.messages import CommandMessage
from simulator.commands import CommandRejectedError

#: A head unit keeps the latest messages, not a history.
DEFAULT_INBOX_SIZE = 50


class NotifyPayload(BaseModel):
    """The ``notify`` payload (docs/protocol.md 5.6); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(max_length=2000)
    category: str = Field(min_length=1, max_length=64)
    notification_id: StrictInt


@dataclass(frozen=True, slots=True)
class ReceivedNotification:
    command_id: str
    notification_id: int
    title: str
    body: str
    category: str
    received_ms: int


class Inbox:
    def __init__(self, size: int = DEFAULT_INBOX_SIZE) -> None:
        self._items: deque[ReceivedNotification] = deque(maxlen=size)

    def add(self, item: ReceivedNotification) -> None:
        self._items.append(item)

    def items(self) -> list[ReceivedNotification]:
        """Oldest first."""
        return list(self._items)


class NotifyHandler:
    """Shows a ``notify`` command (here: records it in the inbox)."""

    def __init__(self, inbox: Inbox, clock: Clock) -> None:
        self._inbox = inbox
        self._clock = clock

    async def __call__(self, command: CommandMessage) -> None:
        try:
            payload = NotifyPayload.model_validate(command.payload)
        except ValidationError as exc:
            raise CommandRejectedError("invalid_payload", str(exc)) from exc
        self._inbox.add(
            ReceivedNotification(
                command_id=command.id,
                notification_id=payload.notification_id,
                title=payload.title,
                body=payload.body,
                category=payload.category,
                received_ms=self._clock.now_ms(),
            )
        )
