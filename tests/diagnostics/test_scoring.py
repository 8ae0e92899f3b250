"""Scoring alerts against ground truth, on hand-made cases with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from diagnostics.scoring import ScoredAlert, TruthFault, format_table, score

T0 = datetime(2026, 9, 1, tzinfo=UTC)
LEAK = "tire_slow_leak"
PADS = "brake_pad_wear"


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def test_precision_recall_and_lead_times() -> None:
    faults = [
        TruthFault("V1", LEAK, "Row1.Left", day(2), day(20)),
        TruthFault("V2", LEAK, "Row2.Right", day(5), day(15)),
        TruthFault("V3", LEAK, "Row1.Right", day(8), None),  # fails after the run
        TruthFault("V4", LEAK, "Row1.Left", day(1), day(30)),  # never alerted: missed
    ]
    alerts = [
        ScoredAlert(1, "V1", LEAK, "Row1.Left", day(6)),  # lead 14
        ScoredAlert(2, "V1", LEAK, "Row1.Left", day(9)),  # a later, second alert: still correct
        ScoredAlert(3, "V2", LEAK, "Row2.Right", day(11)),  # lead 4
        ScoredAlert(4, "V3", LEAK, "Row1.Right", day(12)),  # early detection, not in recall
        ScoredAlert(5, "V2", LEAK, "Row1.Left", day(11)),  # wrong wheel: false
        ScoredAlert(6, "V5", LEAK, "Row1.Left", day(3)),  # healthy car: false
        ScoredAlert(7, "V4", LEAK, "Row1.Left", day(0.5)),  # before the onset: false
    ]
    card = score(faults, alerts, types=[LEAK, PADS], vehicles=100, days=40)
    leak, pads = card.types
    assert (leak.faults, leak.failed, leak.alerts, leak.correct_alerts) == (4, 3, 7, 4)
    assert leak.precision == pytest.approx(4 / 7)
    assert leak.recall == pytest.approx(2 / 3)
    assert sorted(leak.lead_days) == pytest.approx([4, 14])
    assert leak.median_lead_days == pytest.approx(9)
    assert leak.p10_lead_days == pytest.approx(5)
    assert sorted(leak.false_alert_ids) == [5, 6, 7]
    assert leak.missed == ["V4 Row1.Left"]
    assert (pads.alerts, pads.precision, pads.recall) == (0, None, None)
    assert pads.median_lead_days is None
    assert card.false_per_1000_vehicle_days == pytest.approx(3 * 1000 / 4000)
    assert "tire_slow_leak" in format_table(card)


def test_an_alert_after_the_failure_is_not_a_detection() -> None:
    faults = [TruthFault("V1", PADS, "Row1.Left", day(1), day(10))]
    alerts = [ScoredAlert(1, "V1", PADS, "Row1.Left", day(10.5))]
    card = score(faults, alerts, types=[PADS], vehicles=1, days=20)
    assert card.types[0].precision == 1.0  # it is about a real fault
    assert card.types[0].recall == 0.0  # but came too late to count


def test_components_match_when_one_side_leaves_it_empty() -> None:
    faults = [TruthFault("V1", "low_voltage_battery_degradation", "", day(1), day(9))]
    alerts = [ScoredAlert(1, "V1", "low_voltage_battery_degradation", "", day(2))]
    card = score(faults, alerts, types=["low_voltage_battery_degradation"], vehicles=1, days=9)
    assert card.types[0].recall == 1.0
    assert card.types[0].lead_days == [7.0]


def test_no_vehicles_is_refused() -> None:
    with pytest.raises(ValueError, match="vehicles"):
        score([], [], types=[LEAK], vehicles=0, days=1)
