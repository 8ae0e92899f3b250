"""Telemetry validation: what is kept, what is dead-lettered, and with which reason."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import RejectReason
from ingest.validation import ValidationLimits, validate_telemetry
from protocol.catalogue import CATALOGUE

NOW = 1_763_892_000_000
LIMITS = ValidationLimits(
    max_payload_bytes=64 * 1024, future_tolerance_ms=300_000, max_age_ms=30 * 86_400_000
)


def payload(*samples: dict[str, object], seq: int = 1) -> bytes:
    return json.dumps({"seq": seq, "samples": list(samples)}).encode()


def validate(raw: bytes):
    return validate_telemetry(raw, now_ms=NOW, limits=LIMITS)


def reasons(result) -> list[str]:
    return [r.reason.value for r in result.rejections]


def test_good_message_yields_one_reading_per_signal() -> None:
    result = validate(
        payload(
            {"ts": NOW - 2000, "signals": {"Vehicle.Speed": 52.5, "Vehicle.IsMoving": True}},
            {
                "ts": NOW - 1000,
                "signals": {"Vehicle.Powertrain.CombustionEngine.EngineOil.Level": "NORMAL"},
            },
        )
    )
    assert result.seq == 1
    assert result.rejections == []
    assert result.samples_total == 2
    by_signal = {r.signal: r for r in result.readings}
    assert by_signal["Vehicle.Speed"].value == 52.5
    assert by_signal["Vehicle.IsMoving"].value == 1.0
    assert by_signal["Vehicle.Powertrain.CombustionEngine.EngineOil.Level"].text == "NORMAL"
    assert by_signal["Vehicle.Speed"].ts_ms == NOW - 2000


def test_unknown_signals_are_kept() -> None:
    result = validate(
        payload({"ts": NOW, "signals": {"Vehicle.OEM.Custom.Thing": 3, "Vehicle.OEM.Label": "x"}})
    )
    assert {r.signal for r in result.readings} == {"Vehicle.OEM.Custom.Thing", "Vehicle.OEM.Label"}
    assert result.rejections == []


def test_one_bad_value_costs_only_itself() -> None:
    raw = (
        b'{"seq": 3, "samples": ['
        b'{"ts": %d, "signals": {"Vehicle.Speed": NaN, "Vehicle.TraveledDistance": 1200.5}},'
        b'{"ts": %d, "signals": {"Vehicle.Speed": 9999}},'
        b'{"ts": %d, "signals": {"Vehicle.Speed": "fast"}},'
        b'{"ts": %d, "signals": {"Vehicle.Speed": 40}}]}'
    ) % (NOW - 3000, NOW - 2000, NOW - 1000, NOW)
    result = validate(raw)
    assert sorted(reasons(result)) == ["non_finite_value", "out_of_range", "wrong_type"]
    assert [(r.signal, r.value) for r in result.readings] == [
        ("Vehicle.TraveledDistance", 1200.5),
        ("Vehicle.Speed", 40.0),
    ]
    # The dead letter keeps the offending value, not the whole message.
    assert b"9999" in result.rejections[1].fragment
    assert b"1200.5" not in result.rejections[1].fragment


def test_timestamps_outside_the_window_reject_the_sample() -> None:
    result = validate(
        payload(
            {"ts": NOW + 301_000, "signals": {"Vehicle.Speed": 1.0}},
            {"ts": NOW - 31 * 86_400_000, "signals": {"Vehicle.Speed": 2.0}},
            {"ts": NOW - 10 * 365 * 86_400_000, "signals": {"Vehicle.Speed": 3.0}},
            {"ts": NOW + 299_000, "signals": {"Vehicle.Speed": 4.0}},
        )
    )
    assert reasons(result) == ["timestamp_in_future", "timestamp_too_old", "timestamp_too_old"]
    assert [r.value for r in result.readings] == [4.0]


def test_whole_message_rejections() -> None:
    cases = {
        b"\xff\xfe not utf-8": RejectReason.INVALID_ENCODING,
        b'{"seq": 1, "samples": [': RejectReason.MALFORMED_JSON,
        b"[" * 100_000 + b"]" * 100_000: RejectReason.PAYLOAD_TOO_LARGE,
        b"[" * 1000 + b"]" * 1000: RejectReason.MALFORMED_JSON,
        b"[1, 2]": RejectReason.INVALID_ENVELOPE,
        b'{"seq": "1", "samples": [{"ts": 1, "signals": {}}]}': RejectReason.INVALID_ENVELOPE,
        b'{"seq": true, "samples": [{"ts": 1, "signals": {}}]}': RejectReason.INVALID_ENVELOPE,
        b'{"seq": -1, "samples": [{"ts": 1, "signals": {}}]}': RejectReason.INVALID_ENVELOPE,
        b'{"seq": 1, "samples": []}': RejectReason.INVALID_ENVELOPE,
        b'{"seq": 1}': RejectReason.INVALID_ENVELOPE,
    }
    for raw, reason in cases.items():
        result = validate(raw)
        assert reasons(result) == [reason.value], raw[:60]
        assert result.readings == []


def test_too_many_samples_reject_the_envelope() -> None:
    raw = json.dumps({"seq": 1, "samples": [{"ts": NOW, "signals": {}}] * 3601}).encode()
    result = validate_telemetry(raw, now_ms=NOW, limits=ValidationLimits())
    assert reasons(result) == ["invalid_envelope"]
    assert "3601 samples" in result.rejections[0].detail


def test_ten_megabyte_payload_is_rejected_before_parsing() -> None:
    raw = b'{"seq": 1, "samples": [' + b" " * (10 * 1024 * 1024) + b"]}"
    result = validate(raw)
    assert reasons(result) == ["payload_too_large"]
    assert len(result.rejections[0].fragment) <= 2000


def test_malformed_samples_are_rejected_individually() -> None:
    result = validate(
        payload(
            "not a sample",  # type: ignore[arg-type]
            {"ts": "yesterday", "signals": {}},
            {"ts": True, "signals": {}},
            {"ts": NOW, "signals": []},
            {"ts": NOW, "signals": {"Vehicle.Speed": [1, 2]}},
            {"ts": NOW, "signals": {"Vehicle.OEM.Nested": {"a": 1}}},
            {"ts": NOW, "signals": {"": 1}},
            {"ts": NOW, "signals": {"Vehicle.OEM.Big": 2**70}},
            {"ts": NOW, "signals": {"Vehicle.Speed": 12.5}},
        )
    )
    assert reasons(result) == [
        "invalid_sample",
        "invalid_sample",
        "invalid_sample",
        "invalid_sample",
        "wrong_type",
        "wrong_type",
        "invalid_sample",
        "out_of_range",
    ]
    assert [(r.signal, r.value) for r in result.readings] == [("Vehicle.Speed", 12.5)]


def test_boolean_is_not_a_number_and_number_not_a_boolean() -> None:
    result = validate(
        payload({"ts": NOW, "signals": {"Vehicle.Speed": True, "Vehicle.IsMoving": 1}})
    )
    assert reasons(result) == ["wrong_type", "wrong_type"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = validate(raw)
    assert result.readings or result.rejections


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"seq": st.integers(min_value=0, max_value=2**40)},
        optional={
            "samples": st.lists(
                st.fixed_dictionaries(
                    {"ts": st.integers(NOW - 40 * 86_400_000, NOW + 86_400_000) | json_values},
                    optional={
                        "signals": st.dictionaries(st.text(max_size=40), json_values, max_size=5)
                    },
                ),
                max_size=5,
            )
            | json_values
        },
    )
)
def test_arbitrary_documents_account_for_every_value(document: dict[str, object]) -> None:
    raw = json.dumps(document, allow_nan=True).encode()
    result = validate(raw)
    samples = document.get("samples")
    if not isinstance(samples, list) or not samples:
        assert result.readings == [] and len(result.rejections) == 1
        return

    # Every signal value of a well-formed sample is stored or dead-lettered on its own; a
    # malformed sample is dead-lettered once, as a whole.
    def outcomes(sample: object) -> int:
        if not isinstance(sample, dict):
            return 1
        ts, signals = sample.get("ts"), sample.get("signals")
        if not isinstance(ts, int) or isinstance(ts, bool) or not isinstance(signals, dict):
            return 1
        if not NOW - LIMITS.max_age_ms <= ts <= NOW + LIMITS.future_tolerance_ms:
            return 1
        return len(signals)

    assert len(result.readings) + len(result.rejections) == sum(map(outcomes, samples))
    for reading in result.readings:
        assert (reading.value is None) != (reading.text is None)


def test_values_the_database_cannot_store_are_rejected_up_front() -> None:
    result = validate(
        payload(
            {
                "ts": NOW,
                "signals": {
                    "Vehicle.OEM.Label": "a\x00b",
                    "Vehicle.OEM\x00X": 1,
                    "Vehicle.Speed": 3.0,
                },
            }
        )
    )
    assert sorted(reasons(result)) == ["invalid_sample", "invalid_text"]
    assert [r.signal for r in result.readings] == ["Vehicle.Speed"]
    too_big = validate(b'{"seq": 9223372036854775808, "samples": [{"ts": 1, "signals": {}}]}')
    assert reasons(too_big) == ["invalid_envelope"]


def test_brackets_inside_text_values_do_not_count_as_nesting() -> None:
    result = validate(
        payload(
            {
                "ts": NOW,
                "signals": {
                    "Vehicle.OEM.Note": "[" * 40 + "{" * 40,
                    "Vehicle.OEM.Quote": '\\"[[[[' * 20,
                },
            }
        )
    )
    assert result.rejections == []
    assert len(result.readings) == 2


_CATALOGUE_NAMES = sorted(CATALOGUE)
_ANY_SCALAR = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.none(),
)


@given(name=st.sampled_from(_CATALOGUE_NAMES), value=_ANY_SCALAR)
@settings(max_examples=2000, deadline=None)
def test_the_fast_path_decides_exactly_as_the_catalogue_check(name: str, value: object) -> None:
    """Validation accepts most values through a shortcut table; it must agree with
    SignalSpec.check (the contract) on every value, including the reason of a refusal."""
    now = 1_763_892_000_000
    payload = json.dumps({"seq": 1, "samples": [{"ts": now, "signals": {name: value}}]})
    result = validate_telemetry(payload.encode(), now_ms=now)
    # Text with NUL is refused before the catalogue is asked (PostgreSQL text cannot hold it).
    nul_text = isinstance(value, str) and "\x00" in value
    code = RejectReason.INVALID_TEXT.value if nul_text else CATALOGUE[name].check(value)
    if code is None:
        assert [(r.signal, r.value, r.text) for r in result.readings] == [
            (name, None, value) if isinstance(value, str) else (name, float(value), None)  # type: ignore[arg-type]
        ]
        assert result.rejections == []
    else:
        assert result.readings == []
        assert [r.reason.value for r in result.rejections] == [code]
