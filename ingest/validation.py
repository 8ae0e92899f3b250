"""Telemetry validation: raw MQTT payload -> storable readings + rejections. Pure, no I/O.

The rules of docs/protocol.md: size is checked before parsing; a message that cannot be parsed
is rejected whole; otherwise each sample and each signal value is judged on its own, so one bad
value costs only itself (the good samples and signals of the same message are stored). Known
signals are checked against the VSS catalogue; unknown ones are kept when they are JSON scalars.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ingest.errors import RejectReason
from protocol.catalogue import CATALOGUE, FLOAT_TYPES, Datatype, get_signal
from protocol.messages import MAX_SAMPLES_PER_MESSAGE, MAX_SIGNALS_PER_SAMPLE

MAX_SIGNAL_NAME_LENGTH = 256
MAX_TEXT_VALUE_LENGTH = 1024
# Bounds the parser's recursion: a deeply nested document is rejected, never a RecursionError.
MAX_NESTING_DEPTH = 32
DETAIL_MAX_CHARS = 300
MAX_SEQ = 2**63 - 1  # stored as bigint


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    max_payload_bytes: int = 256 * 1024
    future_tolerance_ms: int = 5 * 60 * 1000
    max_age_ms: int = 30 * 24 * 3600 * 1000


class Reading(NamedTuple):
    """One stored value: numeric signals (and booleans as 0/1) in ``value``, text in ``text``.

    A named tuple rather than a frozen dataclass: one is made per value on ingest's hot path,
    and a tuple is built several times faster."""

    signal: str
    ts_ms: int
    value: float | None
    text: str | None


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    detail: str
    # What to keep in the dead letter: the whole payload, or just the offending sample.
    fragment: bytes


@dataclass(slots=True)
class ValidatedTelemetry:
    seq: int | None = None
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    samples_total: int = 0


def _fragment(obj: Any) -> bytes:
    try:
        return json.dumps(obj, allow_nan=True, default=str)[:2000].encode()
    except (TypeError, ValueError, RecursionError):
        return repr(obj)[:2000].encode()


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _depth_exceeded(payload: str) -> bool:
    """Upper bound on nesting depth before handing the text to the recursive parser. Strings
    are blanked first, so brackets inside a text value do not count; both passes are regex
    (C speed), the Python loop only visits brackets."""
    if payload.count("[") + payload.count("{") <= MAX_NESTING_DEPTH:
        return False  # too few brackets to nest that deep (the common case: no regex needed)
    depth = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub('""', payload)):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _whole(reason: RejectReason, detail: str, payload: bytes) -> ValidatedTelemetry:
    return ValidatedTelemetry(rejections=[Rejection(reason, detail[:DETAIL_MAX_CHARS], payload)])


def validate_telemetry(
    payload: bytes, *, now_ms: int, limits: ValidationLimits | None = None
) -> ValidatedTelemetry:
    limits = limits or ValidationLimits()
    if len(payload) > limits.max_payload_bytes:
        return _whole(
            RejectReason.PAYLOAD_TOO_LARGE,
            f"{len(payload)} bytes > limit {limits.max_payload_bytes}",
            payload[:2000],
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _whole(RejectReason.INVALID_ENCODING, f"not UTF-8: {exc}", payload[:2000])
    if _depth_exceeded(text):
        return _whole(
            RejectReason.MALFORMED_JSON, f"nesting deeper than {MAX_NESTING_DEPTH}", payload[:2000]
        )
    try:
        # NaN/Infinity literals are parsed (Python accepts them) and rejected per value below.
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return _whole(RejectReason.MALFORMED_JSON, str(exc), payload[:2000])
    return _validate_document(document, payload, now_ms=now_ms, limits=limits)


def _validate_document(
    document: Any, payload: bytes, *, now_ms: int, limits: ValidationLimits
) -> ValidatedTelemetry:
    if not isinstance(document, dict):
        return _whole(RejectReason.INVALID_ENVELOPE, "payload is not a JSON object", payload)
    seq = document.get("seq")
    samples = document.get("samples")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_SEQ:
        return _whole(
            RejectReason.INVALID_ENVELOPE,
            f"seq must be a non-negative integer, got {seq!r}",
            payload[:2000],
        )
    if not isinstance(samples, list) or not samples:
        return _whole(
            RejectReason.INVALID_ENVELOPE, "samples must be a non-empty array", payload[:2000]
        )
    if len(samples) > MAX_SAMPLES_PER_MESSAGE:
        return _whole(
            RejectReason.INVALID_ENVELOPE,
            f"{len(samples)} samples > limit {MAX_SAMPLES_PER_MESSAGE}",
            payload[:2000],
        )
    result = ValidatedTelemetry(seq=seq, samples_total=len(samples))
    oldest_ms = now_ms - limits.max_age_ms
    newest_ms = now_ms + limits.future_tolerance_ms
    for sample in samples:
        _validate_sample(sample, result, oldest_ms=oldest_ms, newest_ms=newest_ms)
    return result


def _validate_sample(
    sample: Any, result: ValidatedTelemetry, *, oldest_ms: int, newest_ms: int
) -> None:
    def reject(reason: RejectReason, detail: str, fragment: Any = sample) -> None:
        result.rejections.append(Rejection(reason, detail[:DETAIL_MAX_CHARS], _fragment(fragment)))

    if not isinstance(sample, dict):
        reject(RejectReason.INVALID_SAMPLE, "sample is not an object")
        return
    ts = sample.get("ts")
    signals = sample.get("signals")
    if not isinstance(ts, int) or isinstance(ts, bool):
        reject(RejectReason.INVALID_SAMPLE, f"ts must be integer epoch milliseconds, got {ts!r}")
        return
    if not isinstance(signals, dict):
        reject(RejectReason.INVALID_SAMPLE, "signals must be an object")
        return
    if len(signals) > MAX_SIGNALS_PER_SAMPLE:
        reject(
            RejectReason.INVALID_SAMPLE, f"{len(signals)} signals > limit {MAX_SIGNALS_PER_SAMPLE}"
        )
        return
    if ts > newest_ms:
        reject(RejectReason.TIMESTAMP_IN_FUTURE, f"ts {ts} is {ts - newest_ms} ms past tolerance")
        return
    if ts < oldest_ms:
        reject(RejectReason.TIMESTAMP_TOO_OLD, f"ts {ts} is older than the retention window")
        return
    readings = result.readings
    for name, value in signals.items():
        # Fast path: a catalogue number or boolean of the right type inside its range, which is
        # nearly every value, is accepted with one lookup and two comparisons. Anything else
        # (NaN fails both comparisons) takes the full judgement below, which names the reason.
        accepts = ACCEPTS.get(name)
        if accepts is not None:
            kind = type(value)
            if kind in accepts[0] and accepts[1] <= value <= accepts[2]:
                readings.append(Reading(name, ts, float(value), None))
                continue
        reason, detail = judge(name, value)
        if reason is None:
            readings.append(_reading(name, ts, value))
        else:
            reject(
                reason,
                f"{name[:MAX_SIGNAL_NAME_LENGTH]}: {detail}",
                {"ts": ts, "signals": {name: value}},
            )


def _fast_acceptance() -> dict[str, tuple[frozenset[type], float, float]]:
    """Per catalogue signal: the Python types and the range the fast path accepts outright.
    Only what ``SignalSpec.check`` accepts too: floats only for float signals (an integral
    float for an integer signal is legal but rare, and left to the full check)."""
    table: dict[str, tuple[frozenset[type], float, float]] = {}
    for spec in CATALOGUE.values():
        if spec.datatype is Datatype.BOOLEAN:
            table[spec.name] = (frozenset({bool}), False, True)
        elif spec.is_numeric and spec.min is not None and spec.max is not None:
            kinds = {int, float} if spec.datatype in FLOAT_TYPES else {int}
            table[spec.name] = (frozenset(kinds), spec.min, spec.max)
    return table


#: Per catalogue number or boolean: (the types, low, high) accepted without the full check.
ACCEPTS = _fast_acceptance()


def judge(name: str, value: Any) -> tuple[RejectReason | None, str]:
    if not name or len(name) > MAX_SIGNAL_NAME_LENGTH:
        return RejectReason.INVALID_SAMPLE, f"signal name length {len(name)}"
    if "\x00" in name:
        return RejectReason.INVALID_SAMPLE, "signal name contains NUL"
    if isinstance(value, str) and "\x00" in value:
        # PostgreSQL text cannot hold NUL: storing it would fail the whole batch.
        return RejectReason.INVALID_TEXT, "text contains NUL"
    spec = get_signal(name)
    if spec is not None:
        code = spec.check(value)
        if code is None:
            return None, ""
        return RejectReason(code), f"{value!r} rejected for {spec.datatype} {spec.unit or ''}"
    # Unknown signal: kept if it is a JSON scalar we can store.
    if isinstance(value, bool):
        return None, ""
    if isinstance(value, int):
        # Stored as double precision: beyond 2**63 it is not a sensor reading but garbage.
        if abs(value) >= 2**63:
            return RejectReason.OUT_OF_RANGE, f"integer of {value.bit_length()} bits"
        return None, ""
    if isinstance(value, str):
        if len(value) > MAX_TEXT_VALUE_LENGTH:
            return RejectReason.OUT_OF_RANGE, f"text of {len(value)} characters"
        return None, ""
    if isinstance(value, float):
        if math.isfinite(value):
            return None, ""
        return RejectReason.NON_FINITE_VALUE, repr(value)
    return RejectReason.WRONG_TYPE, f"{type(value).__name__} is not a scalar"


def _reading(name: str, ts: int, value: bool | float | str) -> Reading:
    if isinstance(value, str):
        return Reading(name, ts, None, value)
    return Reading(name, ts, float(value), None)
