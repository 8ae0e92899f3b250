"""Traction battery state-of-health model on synthetic series."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from diagnostics.features import DailyFeatures
from diagnostics.findings import AlertType, Severity
from diagnostics.settings import TrendSettings
from diagnostics.trend_engine import assess_fleet
from diagnostics.trends.traction_battery import assess_traction_battery

START = date(2026, 5, 1)
DAYS = 30
NOW = datetime(2026, 5, 31, tzinfo=UTC)
X = np.arange(DAYS) + 0.5
SETTINGS = TrendSettings()


def fleet(vehicles: int) -> DailyFeatures:
    features = DailyFeatures.empty([f"EV{i:015d}" for i in range(vehicles)], START, DAYS)
    features.traction_soh_pct[:] = np.round(93.0 - 0.005 * X, 1)  # calendar ageing, 0.1 %
    return features


def test_fast_fade_gives_slope_crossing_and_severity() -> None:
    features = fleet(2)
    features.traction_soh_pct[0] = np.round(88.0 - 0.6 * X, 1)  # 70 % at x = 30
    result = assess_traction_battery(features, now_day=30.0, settings=SETTINGS)
    assert result.alert.tolist() == [True, False]
    assert result.slope[0] == pytest.approx(-0.6, abs=0.01)
    assert result.failure_day[0] == pytest.approx(30.0, abs=0.3)
    [finding] = assess_fleet(features, NOW, SETTINGS).findings
    assert finding.type is AlertType.TRACTION_BATTERY_DEGRADATION
    assert finding.severity is Severity.CRITICAL
    assert finding.confidence > 0.9


def test_an_old_battery_near_70_percent_with_calendar_ageing_is_no_fault() -> None:
    features = fleet(1)
    features.traction_soh_pct[0] = np.round(70.4 - 0.005 * X, 1)
    assessment = assess_fleet(features, NOW, SETTINGS)
    assert assessment.findings == []
    assert len(assessment.clearances) == 1


def test_cars_without_a_traction_battery_are_not_evaluated() -> None:
    features = fleet(2)
    features.traction_soh_pct[1] = np.nan  # a petrol car
    result = assess_traction_battery(features, now_day=30.0, settings=SETTINGS)
    assert result.clear.tolist() == [True, False]
    assert not result.alert.any()


def test_a_replaced_pack_restarts_the_trend_and_noise_is_tolerated() -> None:
    rng = np.random.default_rng(2)
    features = fleet(1)
    series = np.concatenate([85.0 - 0.8 * X[:12], 99.0 - 0.5 * (X[12:] - X[12])])
    features.traction_soh_pct[0] = series + rng.normal(0.0, 0.15, DAYS)
    result = assess_traction_battery(features, now_day=30.0, settings=SETTINGS)
    assert result.trend.reset_x[0] == pytest.approx(12.5)
    assert result.slope[0] == pytest.approx(-0.5, abs=0.05)
    assert not result.alert[0]  # 99 - 0.5 * 17.5 = 90 %: 40 days to go, beyond the horizon
