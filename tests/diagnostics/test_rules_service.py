"""Service due from the car's service counters (VSS Vehicle.Service.*)."""

from __future__ import annotations

from diagnostics.findings import AlertType, Severity
from diagnostics.stream_input import Sample, SignalValue
from diagnostics.stream_rules import StreamRules
from tests.diagnostics.test_rules_support import DISTANCE, DUE, TIME, at, run, seconds_of

DAY_S = 86_400


def counters(seconds: float, km: float, days: float, due: bool | None = None) -> Sample:
    signals: dict[str, SignalValue] = {DISTANCE: km, TIME: round(days * DAY_S)}
    if due is not None:
        signals[DUE] = due
    return at(seconds, signals)


def test_service_goes_from_far_to_soon_to_due_to_reset() -> None:
    rules = StreamRules()
    assert run(rules, [counters(0, 5000.0, 120)]).findings == []
    soon = run(rules, [counters(100, 999.0, 110), counters(200, 900.0, 110)])
    [info] = soon.findings  # one finding, not one per sample
    assert info.type is AlertType.SERVICE_DUE and info.severity is Severity.INFO
    assert seconds_of(info) == 100 and info.evidence["distance_to_service_km"] == 999.0
    assert "999 km" in info.recommended_action
    # Ticking down within "soon" changes nothing; reaching zero is a warning.
    assert run(rules, [counters(300, 400.0, 100), counters(400, 10.0, 99)]).findings == []
    [warning] = run(rules, [counters(500, -3.0, 98)]).findings
    assert warning.severity is Severity.WARNING and "overdue" in warning.recommended_action
    # The workshop resets the counters.
    reset = run(rules, [counters(600, 15_000.0, 365)])
    assert [c.type for c in reset.clearances] == [AlertType.SERVICE_DUE] and not reset.findings
    assert "reset" in reset.clearances[0].reason


def test_time_alone_makes_a_service_due() -> None:
    rules = StreamRules()
    assert run(rules, [counters(0, 9000.0, 14.5)]).findings == []
    [info] = run(rules, [counters(60, 9000.0, 13.9)]).findings
    assert info.severity is Severity.INFO and "14 days" in info.recommended_action
    [due] = run(rules, [counters(120, 9000.0, 0.0)]).findings
    assert due.severity is Severity.WARNING and "due now" in due.recommended_action


def test_a_sample_without_counters_keeps_the_last_ones() -> None:
    rules = StreamRules()
    run(rules, [counters(0, 9000.0, 10)])
    # A car that sends only what changed: the distance moves, the time is as before.
    outcome = run(rules, [at(60, {DISTANCE: 8990.0})])
    assert outcome.findings == [] and outcome.clearances == []


def test_clearing_needs_the_counters_past_the_soon_levels_by_a_margin() -> None:
    rules = StreamRules()
    run(rules, [counters(0, 990.0, 200)])
    # 1050 km is past 1000 km but within the 100 km margin: still open.
    assert run(rules, [counters(60, 1050.0, 200)]).clearances == []
    assert len(run(rules, [counters(120, 1150.0, 200)]).clearances) == 1


def test_the_flag_is_used_by_cars_without_counters() -> None:
    rules = StreamRules()
    [info] = run(rules, [at(0, {DUE: True})]).findings
    assert info.severity is Severity.INFO and info.evidence["is_service_due"] is True
    assert len(run(rules, [at(60, {DUE: False})]).clearances) == 1
    # With counters, the counters decide (the flag's horizon is the car maker's).
    other = StreamRules()
    assert run(other, [counters(0, 9000.0, 200, due=True)]).findings == []
