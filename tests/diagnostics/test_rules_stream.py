"""StreamRules as a whole: resends, delivery order, state bounds, restarts, settings, inputs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from diagnostics.findings import AlertType, Clearance, Finding
from diagnostics.rule_settings import RuleSettings
from diagnostics.stream_input import DtcEvent, Sample, StreamInputError
from diagnostics.stream_rules import RuleOutcome, StreamRules
from tests.diagnostics.test_rules_support import (
    COOLANT,
    DISTANCE,
    OTHER_VIN,
    TIME,
    VIN,
    at,
    dtc,
    ms,
    pad,
    pressure,
    run,
    seconds_of,
    series,
    tyre_temp,
)

HOT = AlertType.COOLANT_OVERHEATING
DAY_S = 86_400


def busy_batch() -> tuple[list[Sample], list[DtcEvent]]:
    """A batch that raises several conditions on two vehicles, and ends one of them."""
    samples = [
        *series(0, 15, COOLANT, [116.0, 117.0, 118.0, 124.0, 100.0, 99.0, 98.0, 97.0, 96.0]),
        *series(0, 300, pad("Row1.Right"), [91, 92, 93]),
        *[at(i * 15, {pressure(): 240.0 if i < 3 else 200.0, tyre_temp(): 15.0}) for i in range(6)],
        at(0, {DISTANCE: 500.0, TIME: 90 * DAY_S}, vin=OTHER_VIN),
        at(60, {COOLANT: 90.0}, vin=OTHER_VIN),
    ]
    dtcs = [dtc(5, "P0217", True), dtc(100, "P0217", False), dtc(7, "U0100", True, OTHER_VIN)]
    return samples, dtcs


def summary(outcome: RuleOutcome) -> list[tuple[str, str, str, str, float]]:
    return [
        (type(item).__name__, item.vin, item.type.value, item.component, seconds_of(item))
        for item in outcome.in_order()
    ]


def test_the_busy_batch_concludes_what_it_should() -> None:
    outcome = StreamRules().evaluate(*busy_batch())
    assert summary(outcome) == [
        ("Finding", OTHER_VIN, "service_due", "", 0.0),
        ("Finding", VIN, "dtc", "P0217", 5.0),
        ("Finding", OTHER_VIN, "dtc", "U0100", 7.0),
        ("Finding", VIN, "coolant_overheating", "", 30.0),  # 116 C from 0 s, held 30 s
        ("Finding", VIN, "coolant_overheating", "", 45.0),  # 124 C: materially worse
        ("Finding", VIN, "tire_pressure_loss", "Row1.Left", 60.0),  # 40 kPa lost, confirmed
        ("Clearance", VIN, "dtc", "P0217", 100.0),
        ("Clearance", VIN, "coolant_overheating", "", 120.0),  # below 105 C from 60 s
        ("Finding", VIN, "brake_pad_wear", "Row1.Right", 300.0),
    ]


def test_the_same_batch_twice_gives_nothing_new() -> None:
    rules = StreamRules()
    samples, dtcs = busy_batch()
    first = rules.evaluate(samples, dtcs)
    assert first.findings and first.clearances
    again = rules.evaluate(samples, dtcs)
    assert again.findings == [] and again.clearances == []
    # Counted once per distinct sample (same VIN and time: one sample).
    assert rules.counters.late_samples == len({(s.vin, s.ts_ms) for s in samples})
    assert rules.counters.stale_dtc_events == len(dtcs)


BUSY_SAMPLES = len(busy_batch()[0])


@settings(max_examples=40, deadline=None)
@given(
    st.permutations(range(BUSY_SAMPLES)),
    st.lists(st.integers(0, BUSY_SAMPLES - 1), max_size=8),
)
def test_delivery_order_and_duplicates_within_a_batch_do_not_matter(
    order: list[int], duplicates: list[int]
) -> None:
    samples, dtcs = busy_batch()
    expected = StreamRules().evaluate(samples, dtcs)
    shuffled = [samples[i] for i in order] + [samples[i] for i in duplicates]
    got = StreamRules().evaluate(shuffled, list(reversed(dtcs)))
    # Vehicles may come in another order; each vehicle's conclusions are the same.
    assert sorted(map(repr, got.findings)) == sorted(map(repr, expected.findings))
    assert sorted(map(repr, got.clearances)) == sorted(map(repr, expected.clearances))
    assert summary(got) == summary(expected)


def test_a_late_batch_is_skipped_and_counted() -> None:
    rules = StreamRules()
    run(rules, series(1000, 15, COOLANT, [95.0] * 10))
    # Older samples arriving after newer ones: an overheat in the past is not "now".
    late = run(rules, series(0, 15, COOLANT, [120.0] * 10))
    assert late.findings == [] and rules.counters.late_samples == 10


def test_two_samples_with_the_same_time_are_one_sample() -> None:
    rules = StreamRules()
    split = []
    for t in (0, 30, 300):
        split += [at(t, {COOLANT: 116.0}), at(t, {pad(): 95})]
    outcome = run(rules, split)
    assert sorted(f.type for f in outcome.findings) == sorted(
        [AlertType.COOLANT_OVERHEATING, AlertType.BRAKE_PAD_WEAR]
    )
    assert rules.counters.samples == 3 and rules.counters.late_samples == 0


def test_a_condition_that_ends_and_begins_again_in_one_batch_stays_open() -> None:
    rules = StreamRules()
    hot, cool = [116.0] * 3, [100.0] * 5
    outcome = run(rules, series(0, 15, COOLANT, hot + cool + hot))
    # Raised at 30 s, cleared at 105 s, raised again at 150 s: the clearance is withdrawn,
    # so "findings, then clearances" (how the alert store applies a batch) leaves it open.
    assert [seconds_of(f) for f in outcome.findings] == [30, 150]
    assert outcome.clearances == []
    ends = run(rules, series(400, 15, COOLANT, cool))
    assert [seconds_of(c) for c in ends.clearances] == [460]
    assert isinstance(ends.in_order()[-1], Clearance)


def test_in_order_merges_by_time() -> None:
    outcome = run(StreamRules(), series(0, 15, COOLANT, [116.0] * 3 + [100.0] * 5))
    items = outcome.in_order()
    assert [type(i) for i in items] == [Finding, Clearance]
    assert [seconds_of(i) for i in items] == [30, 105]


# ---------------------------------------------------------------- state bounds


def test_idle_vehicles_are_evicted() -> None:
    rules = StreamRules()
    old = series(0, 15, COOLANT, [116.0] * 3)
    assert len(run(rules, old).findings) == 1
    run(rules, [at(6 * DAY_S, {COOLANT: 90.0}, vin=OTHER_VIN)])
    # By the stream's own time (6 days) nobody has been idle for 7 days.
    assert rules.evict_idle() == [] and rules.vehicles == 2
    assert rules.evict_idle(ms(8 * DAY_S)) == [VIN]
    assert rules.vehicles == 1 and rules.counters.evicted_vehicles == 1
    # Forgotten: its old batch is judged afresh.
    assert len(run(rules, old).findings) == 1


def test_at_most_max_vehicles_are_kept_least_recently_seen_first_out() -> None:
    rules = StreamRules(RuleSettings(max_vehicles=2))
    third = "SB1Z93BE0K0123456"
    for vin in (VIN, OTHER_VIN, third):
        run(rules, [Sample(vin, ms(0), {COOLANT: 116.0}), Sample(vin, ms(30), {COOLANT: 116.0})])
    assert rules.vehicles == 2 and rules.counters.evicted_vehicles == 1
    # VIN was the least recently seen and is forgotten; OTHER_VIN's state is intact.
    assert run(rules, [Sample(OTHER_VIN, ms(30), {COOLANT: 116.0})]).findings == []
    resent = [Sample(VIN, ms(0), {COOLANT: 116.0}), Sample(VIN, ms(30), {COOLANT: 116.0})]
    assert len(run(rules, resent).findings) == 1  # judged afresh
    assert rules.counters.late_samples == 1  # only OTHER_VIN's resend


def test_restored_open_alerts_can_be_cleared_after_a_restart() -> None:
    cool = series(0, 30, COOLANT, [100.0] * 3)
    assert run(StreamRules(), cool).clearances == []  # no state: nothing to clear
    rules = StreamRules()
    rules.restore_open(
        [
            (VIN, HOT, ""),
            (VIN, AlertType.DTC, "P0217"),
            (VIN, AlertType.TIRE_PRESSURE_LOSS, "Row1.Left"),
            (VIN, AlertType.SERVICE_DUE, ""),
        ],
        now_ms=ms(0),
    )
    assert rules.evict_idle(ms(DAY_S)) == []  # restored vehicles count as seen at now_ms
    assert run(rules, dtcs=[dtc(1, "P0217", True)]).findings == []  # already open
    healthy = [
        at(t, {COOLANT: 100.0, pressure(): 230.0, tyre_temp(): 15.0, DISTANCE: 9e3, TIME: 9e6})
        for t in (10, 40, 70)
    ]
    outcome = run(rules, healthy)
    assert sorted(c.type for c in outcome.clearances) == sorted(
        [HOT, AlertType.TIRE_PRESSURE_LOSS, AlertType.SERVICE_DUE]
    )
    assert outcome.findings == []


def test_a_restored_pressure_loss_stays_open_while_the_tyre_is_flat() -> None:
    rules = StreamRules()
    rules.restore_open([(VIN, AlertType.TIRE_PRESSURE_LOSS, "Row1.Left")], now_ms=ms(0))
    flat = [at(t, {pressure(): 150.0, tyre_temp(): 15.0}) for t in range(0, 600, 60)]
    outcome = run(rules, flat)
    assert outcome.clearances == []
    assert all(f.type is AlertType.TIRE_PRESSURE_LOSS for f in outcome.findings)


# ---------------------------------------------------------------- settings and inputs


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLINK_DIAGNOSTICS_RULES_OVERHEAT_HOLD_S", "0")
    monkeypatch.setenv("FLEETLINK_DIAGNOSTICS_RULES_OVERHEAT_RAISE_C", "110")
    rules = StreamRules(RuleSettings())
    assert rules.settings.overheat_hold_s == 0
    [finding] = run(rules, [at(0, {COOLANT: 111.0})]).findings
    assert finding.evidence["threshold"] == 110.0


@pytest.mark.parametrize(
    "bad",
    [
        {"overheat_clear_c": 120.0},  # clear above raise: would flap
        {"tire_leak_clear_kpa": 175.0},
        {"lv_clear_v": 11.9},
        {"soh_clear_pct": 70.0},
        {"pad_clear_pct": 95.0},
        {"pressure_loss_clear_margin_kpa": 30.0},
        {"overheat_hold_s": -1},
    ],
)
def test_settings_refuse_levels_without_hysteresis(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        RuleSettings(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("vin", "ts"),
    [("", 0), (VIN, -1), (VIN, True), (VIN, 1.5)],
)
def test_bad_samples_are_refused_with_a_stable_code(vin: str, ts: object) -> None:
    with pytest.raises(StreamInputError) as info:
        Sample(vin, ts, {})  # type: ignore[arg-type]
    assert info.value.code == "stream_input_invalid"


def test_bad_dtc_events_are_refused() -> None:
    with pytest.raises(StreamInputError):
        DtcEvent(VIN, 0, "  ", True)
    with pytest.raises(StreamInputError):
        DtcEvent(VIN, 0, "P0217", 1)  # type: ignore[arg-type]


def test_sample_numbers_skip_flags_text_and_non_finite_values() -> None:
    sample = at(0, {"a": True, "b": "LOW", "c": math.nan, "d": 3, "e": 2.5})
    assert [sample.number(k) for k in "abcdex"] == [None, None, None, 3.0, 2.5, None]
    assert sample.flag("a") is True and sample.flag("d") is None
