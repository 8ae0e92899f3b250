"""Pydantic models of the v1 messages: unknown fields kept, strict scalar types, size limits."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol.messages import (
    MAX_SAMPLES_PER_MESSAGE,
    MAX_SIGNALS_PER_SAMPLE,
    CommandMessage,
    CommandType,
    EventMessage,
    EventType,
    PresenceMessage,
    PresenceState,
    Sample,
    TelemetryMessage,
    encode,
)

TS = 1_763_892_000_000


def telemetry(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "seq": 17,
        "samples": [{"ts": TS, "signals": {"Vehicle.Speed": 52.5}}],
    }
    body.update(overrides)
    return body


def test_contract_example_parses() -> None:
    raw = json.dumps(
        {
            "seq": 17,
            "samples": [
                {"ts": TS, "signals": {"Vehicle.Speed": 52.5, "Vehicle.IsMoving": True}},
                {"ts": TS + 1000, "signals": {"Vehicle.Speed": 53}},
            ],
        }
    )
    message = TelemetryMessage.model_validate_json(raw)
    assert message.seq == 17
    assert [s.ts for s in message.samples] == [TS, TS + 1000]
    assert message.samples[0].signals == {"Vehicle.Speed": 52.5, "Vehicle.IsMoving": True}


def test_signal_values_keep_their_json_type() -> None:
    raw = json.dumps(
        {
            "ts": TS,
            "signals": {"b": True, "i": 52, "f": 52.0, "s": "52", "z": 0, "n": False},
        }
    )
    signals = Sample.model_validate_json(raw).signals
    # "52" stays a string (the catalogue then reports wrong_type), never coerced to a number.
    assert signals["s"] == "52"
    assert type(signals["s"]) is str
    # true is a bool, not 1; 52 is an int, 52.0 a float; 0 and false stay distinct.
    assert signals["b"] is True
    assert signals["n"] is False
    assert type(signals["i"]) is int
    assert type(signals["f"]) is float
    assert type(signals["z"]) is int


@pytest.mark.parametrize("value", [None, [1, 2], {"x": 1}])
def test_non_scalar_signal_values_are_rejected(value: object) -> None:
    with pytest.raises(ValidationError):
        Sample.model_validate({"ts": TS, "signals": {"Vehicle.Speed": value}})


def test_non_finite_numbers_parse_and_are_left_to_the_catalogue() -> None:
    # Ingest reports them per signal as non_finite_value instead of losing the whole sample.
    sample = Sample.model_validate_json(f'{{"ts": {TS}, "signals": {{"a": NaN, "b": Infinity}}}}')
    assert math.isnan(float(sample.signals["a"]))
    assert math.isinf(float(sample.signals["b"]))


def test_unknown_fields_are_kept_at_every_level() -> None:
    body = telemetry(fw="4.2.1", samples=[{"ts": TS, "signals": {}, "quality": "gnss-fix"}])
    message = TelemetryMessage.model_validate(body)
    assert message.model_extra == {"fw": "4.2.1"}
    assert message.samples[0].model_extra == {"quality": "gnss-fix"}
    # ... and survive a round trip through the wire form.
    again = json.loads(encode(message))
    assert again["fw"] == "4.2.1"
    assert again["samples"][0]["quality"] == "gnss-fix"


def test_unknown_signal_names_are_kept() -> None:
    sample = Sample.model_validate({"ts": TS, "signals": {"Vehicle.OEM.Brand.Thing": 1}})
    assert sample.signals == {"Vehicle.OEM.Brand.Thing": 1}


@pytest.mark.parametrize(
    "ts",
    ["1763892000000", 1.763892e12, float(TS), True, -1, 10_000_000_000_000, None],
)
def test_ts_must_be_a_non_negative_integer_of_epoch_millis(ts: object) -> None:
    with pytest.raises(ValidationError):
        Sample.model_validate({"ts": ts, "signals": {}})


@pytest.mark.parametrize("seq", ["17", 17.0, True, -1, 2**63, None])
def test_seq_must_be_a_non_negative_int64(seq: object) -> None:
    with pytest.raises(ValidationError):
        TelemetryMessage.model_validate(telemetry(seq=seq))


def test_seq_bounds_are_inclusive() -> None:
    assert TelemetryMessage.model_validate(telemetry(seq=0)).seq == 0
    assert TelemetryMessage.model_validate(telemetry(seq=2**63 - 1)).seq == 2**63 - 1


def test_telemetry_needs_at_least_one_sample() -> None:
    with pytest.raises(ValidationError, match="at least 1"):
        TelemetryMessage.model_validate(telemetry(samples=[]))
    with pytest.raises(ValidationError):
        TelemetryMessage.model_validate({"seq": 1})


def test_sample_count_limit() -> None:
    samples = [{"ts": TS + i, "signals": {}} for i in range(MAX_SAMPLES_PER_MESSAGE)]
    assert len(TelemetryMessage.model_validate(telemetry(samples=samples)).samples) == 3600
    samples.append({"ts": TS + MAX_SAMPLES_PER_MESSAGE, "signals": {}})
    with pytest.raises(ValidationError):
        TelemetryMessage.model_validate(telemetry(samples=samples))


def test_signal_count_limit() -> None:
    signals = {f"Vehicle.X{i}": i for i in range(MAX_SIGNALS_PER_SAMPLE)}
    assert len(Sample.model_validate({"ts": TS, "signals": signals}).signals) == 512
    signals["Vehicle.One.Too.Many"] = 1
    with pytest.raises(ValidationError):
        Sample.model_validate({"ts": TS, "signals": signals})


def test_messages_are_immutable() -> None:
    message = TelemetryMessage.model_validate(telemetry())
    with pytest.raises(ValidationError):
        message.seq = 18  # type: ignore[misc]


def test_event_message() -> None:
    event = EventMessage.model_validate_json(
        f'{{"seq": 18, "ts": {TS}, "type": "dtc", "code": "P0301", "active": true, "ecu": "ECM"}}'
    )
    assert event.type == EventType.DTC
    assert event.code == "P0301"
    assert event.active is True
    assert event.model_extra == {"ecu": "ECM"}
    # New event types pass through an older backend.
    assert EventMessage.model_validate({"seq": 1, "ts": TS, "type": "tyre_change"}).code is None


@pytest.mark.parametrize(
    "overrides",
    [{"type": ""}, {"type": "x" * 65}, {"active": 1}, {"active": "true"}, {"code": 301}],
)
def test_event_message_rejects(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EventMessage.model_validate({"seq": 1, "ts": TS, "type": "dtc", **overrides})


def test_presence_message() -> None:
    assert PresenceMessage.model_validate({"state": "online", "ts": TS}).state is (
        PresenceState.ONLINE
    )
    # The last will is composed before connecting, so ts is optional.
    offline = PresenceMessage.model_validate({"state": "offline"})
    assert offline.ts is None
    assert encode(offline) == b'{"state":"offline"}'
    with pytest.raises(ValidationError):
        PresenceMessage.model_validate({"state": "asleep"})


def test_command_message_is_strict() -> None:
    command = CommandMessage(id="c-1", type=CommandType.NOTIFY, ts=TS, payload={"text": "hi"})
    assert json.loads(encode(command)) == {
        "id": "c-1",
        "type": "notify",
        "ts": TS,
        "payload": {"text": "hi"},
    }
    with pytest.raises(ValidationError):
        CommandMessage.model_validate({"id": "c-1", "type": "notify", "ts": TS, "extra": 1})
    with pytest.raises(ValidationError):
        CommandMessage.model_validate({"id": "c-1", "type": "reboot", "ts": TS})
    with pytest.raises(ValidationError):
        CommandMessage.model_validate({"id": "", "type": "notify", "ts": TS})


scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


@given(
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    samples=st.lists(
        st.fixed_dictionaries(
            {
                "ts": st.integers(min_value=0, max_value=9_999_999_999_999),
                "signals": st.dictionaries(st.text(max_size=30), scalars, max_size=8),
            }
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_encode_parse_round_trip(seq: int, samples: list[dict[str, Any]]) -> None:
    message = TelemetryMessage.model_validate({"seq": seq, "samples": samples})
    again = TelemetryMessage.model_validate_json(encode(message))
    assert again == message
    for original, parsed in zip(samples, again.samples, strict=True):
        for name, value in original["signals"].items():
            assert type(parsed.signals[name]) is type(value)
