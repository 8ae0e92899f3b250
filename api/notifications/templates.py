"""Templates turn one outbox event into what to tell the customer; the registry maps topics to
templates so that producers (alerts, bookings, OTA ``ota.offer``; later offers
``offer.created``) add theirs without touching the notifier.

A template is pure: it gets the event and a :class:`RenderContext` (the customer's language and
time zone, and what they were already told about the same subject) and returns a
:class:`Draft`, or None when there is nothing worth telling.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from api.notifications.errors import BadPayloadError
from api.notifications.model import Category
from diagnostics.outbox import OutboxEvent

#: Longest title and body the notifications table takes (and e-mail subject lines stay short).
MAX_TITLE = 200
MAX_BODY = 2000


@dataclass(frozen=True, slots=True)
class Told:
    """An earlier notification to the same customer about the same subject."""

    topic: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RenderContext:
    language: str  # a supported language (api.notifications.texts.resolve_language)
    timezone: ZoneInfo
    told: tuple[Told, ...] = ()


@dataclass(frozen=True, slots=True)
class Draft:
    category: Category
    title: str
    body: str
    # Links for the app: alert_id, booking_id, work_order_id, ... (JSON scalars).
    data: Mapping[str, Any] = field(default_factory=dict)
    # Two drafts with the same key for one customer are one notification (first one wins).
    dedupe_key: str = ""

    def __post_init__(self) -> None:
        # Frozen: clip through object.__setattr__ so a long centre name cannot fail the insert.
        object.__setattr__(self, "title", _clip(self.title, MAX_TITLE))
        object.__setattr__(self, "body", _clip(self.body, MAX_BODY))


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


class Template(Protocol):
    def render(self, event: OutboxEvent, context: RenderContext) -> Draft | None: ...


def default_dedupe_key(event: OutboxEvent) -> str:
    """One notification per topic and subject: ``booking.confirmed|booking:7``."""
    return f"{event.topic}|{event.subject}"


class TemplateRegistry:
    """Topic -> template. Topics without a template are not notified (``alert.acknowledged``
    is the customer's own action, for example)."""

    def __init__(self, templates: Mapping[str, Template] | None = None) -> None:
        self._templates: dict[str, Template] = dict(templates or {})

    def register(self, topic: str, template: Template) -> None:
        if topic in self._templates:
            raise ValueError(f"a template for {topic!r} is already registered")
        self._templates[topic] = template

    def get(self, topic: str) -> Template | None:
        return self._templates.get(topic)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._templates))


P = TypeVar("P", bound=BaseModel)


def parse_payload(model: type[P], event: OutboxEvent) -> P:
    """The event's payload as ``model``, or :class:`BadPayloadError`."""
    try:
        return model.model_validate(event.payload)
    except ValidationError as exc:
        raise BadPayloadError(event.topic, str(exc.errors(include_input=False))) from exc
