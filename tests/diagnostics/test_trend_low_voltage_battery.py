"""12 V battery model on synthetic resting-voltage series."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from diagnostics.features import DailyFeatures
from diagnostics.findings import AlertType, Severity
from diagnostics.settings import TrendSettings
from diagnostics.trend_engine import assess_fleet
from diagnostics.trends.low_voltage_battery import assess_low_voltage_battery

START = date(2026, 2, 1)
DAYS = 30
NOW = datetime(2026, 3, 3, tzinfo=UTC)
X = np.arange(DAYS) + 0.5
SETTINGS = TrendSettings()


def fleet(vehicles: int) -> DailyFeatures:
    features = DailyFeatures.empty([f"LV{i:015d}" for i in range(vehicles)], START, DAYS)
    # Healthy: 12.65 V at rest, read to 0.01 V, self-discharge shows as a wobble.
    rng = np.random.default_rng(5)
    features.lv_resting_v[:] = np.round(12.645 + rng.normal(0.0, 0.004, (vehicles, DAYS)), 2)
    return features


def test_a_degrading_battery_gives_slope_and_crossing() -> None:
    features = fleet(3)
    features.lv_resting_v[1] = np.round(12.65 - 0.02 * X, 2)  # 12.0 V at x = 32.5
    features.lv_cranking_min_v[1, :-2] = 9.8
    features.lv_cranking_min_v[1, -3] = 9.6  # the newest start the car reported
    result = assess_low_voltage_battery(features, now_day=30.0, settings=SETTINGS)
    assert result.alert.tolist() == [False, True, False]
    assert result.slope[1] == pytest.approx(-0.02, abs=0.001)
    assert result.failure_day[1] == pytest.approx(32.5, abs=1.0)
    assessment = assess_fleet(features, NOW, SETTINGS)
    [finding] = assessment.findings
    assert finding.type is AlertType.LOW_VOLTAGE_BATTERY_DEGRADATION
    assert finding.component == ""
    assert finding.severity is Severity.CRITICAL  # ~2.5 days left
    assert finding.evidence["unit"] == "V" and finding.evidence["threshold"] == 12.0
    assert finding.evidence["cranking_min_v"] == 9.6
    assert "12 V battery" in finding.recommended_action
    assert {c.vin for c in assessment.clearances} == {features.vins[0], features.vins[2]}


def test_slow_loss_far_from_the_threshold_waits_for_the_horizon() -> None:
    features = fleet(1)
    features.lv_resting_v[0] = 12.65 - 0.008 * X  # abnormal, but 12.0 V is ~50 days away
    result = assess_low_voltage_battery(features, now_day=30.0, settings=SETTINGS)
    assert result.trend.abnormal[0] and not result.alert[0]
    assert not result.clear[0]  # suspicious: an open alert would stay open
    assert result.failure_day[0] == pytest.approx(0.65 / 0.008, abs=0.5)


def test_gaps_and_a_glitch_do_not_hide_the_trend() -> None:
    features = fleet(1)
    series = 12.6 - 0.03 * X
    series[[3, 4, 10, 11, 12, 20]] = np.nan  # days parked less than 2 h or away
    series[15] = 11.2  # one bad reading
    features.lv_resting_v[0] = series
    result = assess_low_voltage_battery(features, now_day=30.0, settings=SETTINGS)
    assert result.alert[0]
    assert result.slope[0] == pytest.approx(-0.03, abs=0.002)


def test_a_new_battery_restarts_the_trend() -> None:
    features = fleet(1)
    features.lv_resting_v[0] = np.concatenate([12.6 - 0.03 * X[:18], np.full(12, 12.7)])
    assessment = assess_fleet(features, NOW, SETTINGS)
    assert assessment.findings == []
    [clearance] = assessment.clearances
    assert clearance.reason == "trend within healthy wear"


def test_too_few_days_after_the_replacement_are_not_judged() -> None:
    features = fleet(1)
    features.lv_resting_v[0] = np.concatenate([12.6 - 0.03 * X[:27], np.full(3, 12.7)])
    assessment = assess_fleet(features, NOW, SETTINGS)
    assert assessment.findings == [] and assessment.clearances == []
