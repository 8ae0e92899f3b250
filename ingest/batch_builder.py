"""Received messages -> one :class:`Batch`: what a transaction stores. Pure: no I/O.

Messages are added one at a time as they are taken from the queue, so the worker can build the
next batch while the previous one commits. Telemetry is first offered to the fast path
(``ingest.fast_telemetry``), which takes clean messages whole as column blocks; the rest goes
through the full validation with its reason codes. Only if a sample (VIN, ts) turns up twice in
the batch is it rebuilt through the full path alone, whose rows merge the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from ingest.errors import RejectReason
from ingest.events import envelope_reason, validate_event
from ingest.fast_telemetry import TelemetryBlocks
from ingest.location_consent import LocationConsent, without_position
from ingest.store import Batch, DeadLetter, PresenceUpdate
from ingest.validation import Rejection, ValidationLimits, validate_telemetry
from protocol.clock import utc_from_ms
from protocol.errors import InvalidTopicError
from protocol.messages import PresenceMessage, PresenceState
from protocol.topics import TopicKind, parse_vehicle_topic


@dataclass(frozen=True, slots=True)
class Received:
    """A message as the broker delivered it (what of it a batch needs)."""

    topic: str
    payload: bytes
    retain: bool = False


class BatchBuilder:
    def __init__(
        self,
        *,
        now_ms: int,
        limits: ValidationLimits,
        consent: LocationConsent | None = None,
        fast: bool = True,
    ) -> None:
        """``consent``: whose positions may be stored; without it, everyone's are."""
        self._now_ms = now_ms
        self._limits = limits
        self._consent = consent
        self._received: list[Received] = []
        self._batch = Batch()
        self._blocks = TelemetryBlocks(now_ms=now_ms, limits=limits) if fast else None

    def add(self, message: Received) -> None:
        self._received.append(message)
        batch, topic, payload = self._batch, message.topic, message.payload
        try:
            parsed = parse_vehicle_topic(topic)
        except InvalidTopicError as exc:
            batch.dead_letters.append(
                dead_letter(None, topic, RejectReason.INVALID_TOPIC, str(exc), payload)
            )
            return
        vin = parsed.vin
        if parsed.kind == TopicKind.PRESENCE:
            self._add_presence(vin, topic, payload, retain=message.retain)
        elif parsed.kind == TopicKind.EVENTS:
            self._add_event(vin, topic, payload)
        else:
            self._add_telemetry(vin, topic, payload)

    def finish(self) -> Batch:
        if self._blocks is None or self._blocks.finish(self._batch):
            return self._batch
        full = BatchBuilder(
            now_ms=self._now_ms, limits=self._limits, consent=self._consent, fast=False
        )
        for message in self._received:
            full.add(message)
        return full.finish()

    def _allows_position(self, vin: str) -> bool:
        return self._consent is None or self._consent.allows(vin)

    def _add_telemetry(self, vin: str, topic: str, payload: bytes) -> None:
        batch = self._batch
        allows_position = self._allows_position(vin)
        if self._blocks is not None:
            taken = self._blocks.add(vin, payload, allows_position=allows_position)
            if taken is not None:
                batch.samples += taken.samples
                batch.fast_messages += 1
                batch.add_seq(vin, taken.seq)
                return
        # The full validation: every sample and value judged, with reasons.
        result = validate_telemetry(payload, now_ms=self._now_ms, limits=self._limits)
        batch.samples += result.samples_total
        readings = result.readings
        if not allows_position:
            readings = without_position(readings)
            batch.positions_withheld += len(result.readings) - len(readings)
        batch.add_readings(vin, readings)
        if result.seq is not None:
            batch.add_seq(vin, result.seq)
        for rejection in result.rejections:
            batch.dead_letters.append(DeadLetter(vin, topic, rejection))

    def _add_event(self, vin: str, topic: str, payload: bytes) -> None:
        event = validate_event(payload, now_ms=self._now_ms, limits=self._limits)
        if isinstance(event, Rejection):
            self._batch.dead_letters.append(DeadLetter(vin, topic, event))
            return
        if not self._allows_position(vin):
            # Fields beyond the contract may carry a position: not without consent.
            event = event.contract_only()
        self._batch.events.append((vin, event))
        self._batch.add_seq(vin, event.seq)  # one counter per car, shared with telemetry

    def _add_presence(self, vin: str, topic: str, payload: bytes, *, retain: bool) -> None:
        try:
            presence = PresenceMessage.model_validate_json(payload)
        except ValidationError as exc:
            rejection = Rejection(envelope_reason(exc), str(exc)[:300], payload[:2000])
            self._batch.dead_letters.append(DeadLetter(vin, topic, rejection))
            return
        # A live report happens now (the will carries no usable time); a retained one is as old
        # as the car said, or unknown.
        # A car clock ahead must not pin the row in the future (newer reports would look older).
        now_ms = self._now_ms
        at_ms = min(presence.ts, now_ms) if retain and presence.ts is not None else now_ms
        self._batch.presence.append(
            PresenceUpdate(vin, presence.state == PresenceState.ONLINE, utc_from_ms(at_ms), retain)
        )


def dead_letter(
    vin: str | None, topic: str, reason: RejectReason, detail: str, payload: bytes
) -> DeadLetter:
    """A whole message dead-lettered (its detail and payload cut to the stored lengths)."""
    return DeadLetter(vin, topic, Rejection(reason, detail[:300], payload[:2000]))
