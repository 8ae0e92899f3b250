"""Event messages (``v1/vehicles/{VIN}/events``, docs/protocol.md 5.2) -> a storable event or
a rejection. Pure, no I/O.

One event per message: a message is stored or dead-lettered whole. The same limits as telemetry
apply (size before parsing, ``ts`` inside the retention window and not in the future). Fields
the contract does not name are kept: the whole message is stored as ``body`` (jsonb).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from pydantic import ValidationError

from ingest.errors import RejectReason
from ingest.validation import DETAIL_MAX_CHARS, Rejection, ValidationLimits
from protocol.messages import EventMessage

MAX_CODE_LENGTH = 32
_FRAGMENT_BYTES = 2000


@dataclass(frozen=True, slots=True)
class VehicleEvent:
    seq: int
    ts_ms: int
    type: str
    code: str | None
    active: bool | None
    body: str  # the message as JSON, unknown fields included

    def contract_only(self) -> VehicleEvent:
        """The event without the fields the contract does not name."""
        body = json.dumps(
            {
                "seq": self.seq,
                "ts": self.ts_ms,
                "type": self.type,
                "code": self.code,
                "active": self.active,
            }
        )
        return replace(self, body=body)


def envelope_reason(exc: ValidationError) -> RejectReason:
    """Why pydantic refused a whole message: not JSON at all, or JSON of the wrong shape."""
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return RejectReason.MALFORMED_JSON
    return RejectReason.INVALID_ENVELOPE


def validate_event(
    payload: bytes, *, now_ms: int, limits: ValidationLimits
) -> VehicleEvent | Rejection:
    def reject(reason: RejectReason, detail: str) -> Rejection:
        return Rejection(reason, detail[:DETAIL_MAX_CHARS], payload[:_FRAGMENT_BYTES])

    if len(payload) > limits.max_payload_bytes:
        return reject(
            RejectReason.PAYLOAD_TOO_LARGE,
            f"{len(payload)} bytes > limit {limits.max_payload_bytes}",
        )
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return reject(RejectReason.INVALID_ENCODING, f"not UTF-8: {exc}")
    try:
        event = EventMessage.model_validate_json(payload)
    except ValidationError as exc:
        return reject(envelope_reason(exc), str(exc))
    if event.code is not None and len(event.code) > MAX_CODE_LENGTH:
        return reject(RejectReason.INVALID_ENVELOPE, f"code longer than {MAX_CODE_LENGTH}")
    if event.ts > now_ms + limits.future_tolerance_ms:
        return reject(RejectReason.TIMESTAMP_IN_FUTURE, f"ts {event.ts} is past tolerance")
    if event.ts < now_ms - limits.max_age_ms:
        return reject(RejectReason.TIMESTAMP_TOO_OLD, f"ts {event.ts} is older than retention")
    body = event.model_dump_json()
    if "\\u0000" in body:  # jsonb (like text) cannot hold NUL
        return reject(RejectReason.INVALID_TEXT, "a string contains NUL")
    return VehicleEvent(event.seq, event.ts, event.type, event.code, event.active, body)
