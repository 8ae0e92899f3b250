"""The car's command handling: a registry of handlers by command type, and a dispatcher that
turns each payload received on ``v1/vehicles/{VIN}/commands`` into one handler call.

Registering a handler (one registry per car, built by :class:`simulator.onboard.Onboard`)::

    async def on_offer(command: CommandMessage) -> None:
        ...  # raise CommandRejectedError("reason") to refuse it

    onboard.registry.register(CommandType.OTA_OFFER, on_offer)

A handler runs on the car's MQTT receive loop: it must return promptly and start long work
(a download, an install) as a task of its own.

What the dispatcher guarantees (docs/protocol.md section 5.5):

- Commands are delivered at least once (MQTT QoS 1). An id already handled is ignored, so a
  redelivered command is executed once. Only a command that was carried out counts as handled:
  a rejected one may come again (and a forged command cannot burn the id of a genuine one).
- The car acknowledges each command it carried out with a ``command_ack`` event
  (``{"type": "command_ack", "id": ...}``) on its events topic.
- A bad command (too large, not JSON, not a command, a type without a handler, a payload its
  handler refuses) never stops the car: it is counted by reason, logged once, and reported with
  an event (``command_rejected``, or the handler's own type such as ``entitlement_rejected``).
- Fields of the command the car does not know are ignored (a newer cloud, an older car).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from protocol.clock import Clock
from protocol.messages import CommandMessage, CommandType

log = logging.getLogger(__name__)

#: Refused before parsing. Room for the largest entitlement document (64 KiB of body, base64).
MAX_COMMAND_BYTES = 128 * 1024
#: How many handled ids the car remembers for deduplication. A redelivery follows the original
#: within one session, so a short memory is enough.
DEFAULT_REMEMBERED_IDS = 1024
COMMAND_ACK = "command_ack"
COMMAND_REJECTED = "command_rejected"
_COMMAND_FIELDS = frozenset(CommandMessage.model_fields)

#: An extra field of an event the car reports (``id``, ``reason``, ``version``...).
EventValue = str | int | bool
CommandHandler = Callable[[CommandMessage], Awaitable[None]]


class EventSink(Protocol):
    """Where the car's events go: :meth:`simulator.car.CarLink.offer_event`."""

    def offer_event(
        self,
        ts_ms: int,
        event_type: str,
        *,
        code: str | None = None,
        active: bool | None = None,
        fields: Mapping[str, EventValue] | None = None,
    ) -> None: ...


class CommandRejectedError(Exception):
    """Raised by a handler that refuses a command. ``reason`` is a stable code; the car reports
    it with an event of ``event_type`` carrying the command id, the reason and ``fields``."""

    def __init__(
        self,
        reason: str,
        detail: str = "",
        *,
        event_type: str = COMMAND_REJECTED,
        fields: Mapping[str, EventValue] | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.code = reason
        self.event_type = event_type
        self.fields = dict(fields or {})


class CommandRegistry:
    """Handlers by command type; one handler per type."""

    def __init__(self) -> None:
        self._handlers: dict[str, CommandHandler] = {}

    def register(self, command_type: CommandType | str, handler: CommandHandler) -> None:
        """Handle commands of ``command_type`` with ``handler`` (replacing an earlier one)."""
        self._handlers[CommandType(command_type).value] = handler

    def handler(self, command_type: str) -> CommandHandler | None:
        return self._handlers.get(command_type)

    def types(self) -> frozenset[str]:
        return frozenset(self._handlers)


class CommandDispatcher:
    """Call it with each raw payload from the commands topic (``CarLink(on_command=...)``)."""

    def __init__(
        self,
        registry: CommandRegistry,
        events: EventSink,
        clock: Clock,
        *,
        remembered_ids: int = DEFAULT_REMEMBERED_IDS,
        max_command_bytes: int = MAX_COMMAND_BYTES,
    ) -> None:
        self._registry = registry
        self._events = events
        self._clock = clock
        self._remembered = remembered_ids
        self._max_bytes = max_command_bytes
        self._handled: OrderedDict[str, None] = OrderedDict()
        self.executed = 0
        self.duplicates = 0
        self.rejected: Counter[str] = Counter()

    async def __call__(self, payload: bytes) -> None:
        if len(payload) > self._max_bytes:
            self._reject(None, "too_large", f"{len(payload)} bytes > {self._max_bytes}")
            return
        try:
            raw = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._reject(None, "malformed_json", str(exc))
            return
        command_id = _readable_id(raw)
        command = self._parse(raw, command_id)
        if command is None:
            return
        if command.id in self._handled:
            self.duplicates += 1
            self._handled.move_to_end(command.id)
            return
        handler = self._registry.handler(command.type.value)
        if handler is None:
            self._reject(command.id, "unsupported_type", command.type.value)
            return
        try:
            await handler(command)
        except CommandRejectedError as exc:
            self._reject(command.id, exc.reason, str(exc), exc.event_type, exc.fields)
            return
        except Exception:  # a handler bug must not take the car's receive loop down
            log.exception("car: handler for %s %s failed", command.type.value, command.id)
            self._reject(command.id, "handler_error", "the handler raised")
            return
        self._remember(command.id)
        self.executed += 1
        self._events.offer_event(self._clock.now_ms(), COMMAND_ACK, fields={"id": command.id})

    def _parse(self, raw: Any, command_id: str | None) -> CommandMessage | None:
        if not isinstance(raw, dict):
            self._reject(None, "invalid_command", "not a JSON object")
            return None
        known = {k: v for k, v in raw.items() if k in _COMMAND_FIELDS}
        try:
            return CommandMessage.model_validate(known)
        except ValidationError as exc:
            kind = raw.get("type")
            if isinstance(kind, str) and kind not in set(CommandType):
                self._reject(command_id, "unsupported_type", kind[:64])
            else:
                self._reject(command_id, "invalid_command", str(exc))
            return None

    def _remember(self, command_id: str) -> None:
        self._handled[command_id] = None
        while len(self._handled) > self._remembered:
            self._handled.popitem(last=False)

    def _reject(
        self,
        command_id: str | None,
        reason: str,
        detail: str,
        event_type: str = COMMAND_REJECTED,
        fields: Mapping[str, EventValue] | None = None,
    ) -> None:
        self.rejected[reason] += 1
        log.warning("car: command %s rejected: %s (%s)", command_id, reason, detail[:200])
        report: dict[str, EventValue] = {**(fields or {}), "reason": reason}
        if command_id is not None:
            report["id"] = command_id
        self._events.offer_event(self._clock.now_ms(), event_type, fields=report)


def _readable_id(raw: Any) -> str | None:
    """The command's id when it is usable in a report, even if the rest of it is not."""
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return None
