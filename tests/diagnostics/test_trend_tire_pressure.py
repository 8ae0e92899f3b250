"""Tyre slow leak model on synthetic cold-pressure series with known slopes and crossings."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from diagnostics.features import WHEELS, DailyFeatures
from diagnostics.findings import AlertType, Severity
from diagnostics.settings import TrendSettings
from diagnostics.trend_engine import assess_fleet
from diagnostics.trends.tire_pressure import assess_tire_pressure

START = date(2026, 3, 1)
DAYS = 30
NOW = datetime(2026, 3, 31, tzinfo=UTC)  # end of the window's last day
X = np.arange(DAYS) + 0.5  # a daily value stands for its day's middle
SETTINGS = TrendSettings()
LEAKY = 3  # Row2.Right


def fleet(vehicles: int) -> DailyFeatures:
    features = DailyFeatures.empty([f"VIN{i:014d}" for i in range(vehicles)], START, DAYS)
    features.tire_cold_kpa[:] = 238.0 - 0.1 * X  # healthy permeation on every wheel
    return features


def leaking(slope: float, start_kpa: float = 240.0) -> np.ndarray:
    return start_kpa - slope * X


def test_a_linear_leak_gives_its_slope_and_crossing_day() -> None:
    features = fleet(1)
    features.tire_cold_kpa[0, LEAKY] = leaking(1.5)  # 240 - 1.5 x = 180 at x = 40
    result = assess_tire_pressure(features, now_day=30.0, settings=SETTINGS)
    key = LEAKY
    assert result.alert.tolist() == [False, False, False, True]
    assert result.slope[key] == pytest.approx(-1.5, abs=1e-6)
    assert result.failure_day[key] == pytest.approx(40.0, abs=1e-6)
    assert result.trend.current[key] == pytest.approx(240.0 - 1.5 * 29.5, abs=1e-6)
    assert result.clear.tolist() == [True, True, True, False]

    finding = assess_fleet(features, NOW, SETTINGS).findings[0]
    assert finding.type is AlertType.TIRE_SLOW_LEAK
    assert finding.component == WHEELS[LEAKY] == "Row2.Right"
    assert finding.severity is Severity.WARNING  # 10 days left
    assert finding.predicted_failure_at == datetime(2026, 4, 10, tzinfo=UTC)
    assert finding.observed_at == NOW
    assert finding.evidence["slope"] == pytest.approx(-1.5)
    assert finding.evidence["threshold"] == 180.0
    assert finding.evidence["days_used"] == 30
    assert "rear right tyre" in finding.recommended_action


def test_noisy_and_gappy_leak_is_found_within_tolerance() -> None:
    rng = np.random.default_rng(11)
    features = fleet(50)
    series = leaking(1.2) + rng.normal(0.0, 1.0, (50, DAYS))
    series[rng.random((50, DAYS)) < 0.4] = np.nan  # 40 % of the days without a cold reading
    features.tire_cold_kpa[:, LEAKY] = series
    result = assess_tire_pressure(features, now_day=30.0, settings=SETTINGS)
    keys = np.arange(50) * 4 + LEAKY
    assert result.alert[keys].all()
    assert np.abs(result.slope[keys] + 1.2).max() < 0.25
    # 240 - 1.2 x = 180 at x = 50: 20 days after now (an error of 0.1 kPa/day in the slope
    # moves that by ~4 days).
    error_days = np.abs(result.failure_day[keys] - 50.0)
    assert np.median(error_days) < 1.5 and error_days.max() < 6.0
    healthy = np.setdiff1d(np.arange(200), keys)
    assert not result.alert[healthy].any()


def test_healthy_permeation_never_alerts_even_close_to_the_threshold() -> None:
    features = fleet(2)
    features.tire_cold_kpa[1] = 183.0 - 0.1 * X  # under-inflated, but not leaking
    assessment = assess_fleet(features, NOW, SETTINGS)
    assert assessment.findings == []
    assert len(assessment.clearances) == 8
    assert {c.reason for c in assessment.clearances} == {"trend within healthy wear"}


def test_a_refill_restarts_the_trend() -> None:
    features = fleet(2)
    before = 240.0 - 3.0 * X[:15]  # leaking hard: 196 kPa on day 14
    healthy_after = 239.0 - 0.1 * (X[15:] - X[15])
    still_leaking = 239.0 - 2.0 * (X[15:] - X[15])
    features.tire_cold_kpa[0, LEAKY] = np.concatenate([before, healthy_after])
    features.tire_cold_kpa[1, LEAKY] = np.concatenate([before, still_leaking])
    result = assess_tire_pressure(features, now_day=30.0, settings=SETTINGS)
    refilled, leaking_again = LEAKY, 4 + LEAKY
    assert not result.alert[refilled] and result.clear[refilled]
    assert result.alert[leaking_again]
    assert result.slope[leaking_again] == pytest.approx(-2.0, abs=1e-6)
    assert result.trend.reset_x[leaking_again] == pytest.approx(15.5)
    assert result.trend.reset_column[leaking_again] == 15
    assert result.trend.fit.n[leaking_again] == 15
    finding = assess_fleet(features, NOW, SETTINGS).findings[0]
    assert finding.vin == features.vins[1]
    assert finding.evidence["restarted_on"] == "2026-03-16"


def test_a_tyre_change_restarts_the_trend() -> None:
    features = fleet(1)
    features.tire_cold_kpa[0, LEAKY] = np.concatenate(
        [240.0 - 2.5 * X[:20], np.full(10, 250.0)]  # new tyre at a higher pressure
    )
    assessment = assess_fleet(features, NOW, SETTINGS)
    assert assessment.findings == []
    assert any(c.component == "Row2.Right" for c in assessment.clearances)


def test_too_little_data_gives_neither_finding_nor_clearance() -> None:
    features = fleet(1)
    features.tire_cold_kpa[:] = np.nan
    features.tire_cold_kpa[0, :, -3:] = [[230.0, 220.0, 210.0]] * 4  # three days, steep
    assessment = assess_fleet(features, NOW, SETTINGS)
    assert assessment.findings == [] and assessment.clearances == []


def test_past_the_threshold_is_critical_without_a_prediction() -> None:
    features = fleet(1)
    features.tire_cold_kpa[0, LEAKY] = leaking(2.5, start_kpa=230.0)  # 180 at x = 20
    finding = assess_fleet(features, NOW, SETTINGS).findings[0]
    assert finding.severity is Severity.CRITICAL
    assert finding.predicted_failure_at is None
    assert finding.evidence["days_to_failure"] == pytest.approx(-10.0, abs=1e-6)
    assert "has reached its limit" in finding.recommended_action


def test_a_recent_onset_is_seen_in_the_short_window() -> None:
    features = fleet(1)
    series = 240.0 - 0.1 * X
    series[22:] = series[21] - 4.0 * (X[22:] - X[21])  # leak began a week ago
    features.tire_cold_kpa[0, LEAKY] = series
    result = assess_tire_pressure(features, now_day=30.0, settings=SETTINGS)
    assert result.alert[LEAKY]
    assert result.trend.window_days[LEAKY] == 7
    # 4 kPa/day from ~209 kPa on day 29.5: ~7 days on, which the 30-day line would miss.
    assert result.failure_day[LEAKY] == pytest.approx(29.5 + (series[-1] - 180.0) / 4.0, abs=1.5)
