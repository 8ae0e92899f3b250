"""Brake pad model: wear against distance, turned into days with the car's own mileage."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from diagnostics.features import DailyFeatures
from diagnostics.findings import AlertType, Severity
from diagnostics.settings import TrendSettings
from diagnostics.trend_engine import assess_fleet
from diagnostics.trends.brake_pads import assess_brake_pads, daily_distance_km

START = date(2026, 6, 1)
DAYS = 30
NOW = datetime(2026, 7, 1, tzinfo=UTC)
SETTINGS = TrendSettings()
KM_PER_DAY = 40.0
ODOMETER = 50_000.0 + KM_PER_DAY * (np.arange(DAYS) + 1.0)  # end of each day


def fleet(vehicles: int) -> DailyFeatures:
    features = DailyFeatures.empty([f"PAD{i:014d}" for i in range(vehicles)], START, DAYS)
    features.odometer_km[:] = ODOMETER
    driven = ODOMETER - 50_000.0
    # Healthy: front 2 %/1000 km, rear 1 %/1000 km; the sensor reads whole percent.
    for wheel, start, rate in ((0, 40.0, 2.0), (1, 41.0, 2.0), (2, 20.0, 1.0), (3, 21.0, 1.0)):
        features.pad_wear_pct[:, wheel] = np.round(start + rate * driven / 1000.0)
    return features


def test_a_sticking_caliper_gives_wear_per_1000_km_and_the_day_it_reaches_90() -> None:
    features = fleet(2)
    features.pad_wear_pct[0, 0] = np.round(50.0 + 0.03 * (ODOMETER - 50_000.0))
    result = assess_brake_pads(features, now_day=30.0, settings=SETTINGS)
    assert result.alert.tolist() == [True] + [False] * 7
    assert result.slope[0] == pytest.approx(30.0, abs=0.5)  # %/1000 km
    # 90 % at 51,333 km: 133 km after the last reading (51,200 km) at 40 km/day.
    assert result.failure_day[0] == pytest.approx(30.0 + 133.3 / 40.0, abs=0.5)
    assert result.extra["km_per_day"][0] == pytest.approx(40.0)
    assert result.clear[1:].all()
    [finding] = assess_fleet(features, NOW, SETTINGS).findings
    assert finding.type is AlertType.BRAKE_PAD_WEAR and finding.component == "Row1.Left"
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["slope_unit"] == "%/1000 km"
    assert finding.evidence["km_per_day"] == pytest.approx(40.0)
    assert "front left brake pad" in finding.recommended_action


def test_days_parked_neither_wear_the_pads_nor_distort_the_rate() -> None:
    features = fleet(1)
    odometer = ODOMETER.copy()
    odometer[10:17] = odometer[9]  # a week parked ...
    odometer[17:] -= 7 * KM_PER_DAY  # ... so the odometer resumes from there
    features.odometer_km[0] = odometer
    features.pad_wear_pct[0, 1] = np.round(40.0 + 0.025 * (odometer - 50_000.0))
    result = assess_brake_pads(features, now_day=30.0, settings=SETTINGS)
    assert result.slope[1] == pytest.approx(25.0, abs=0.7)
    # The forecast uses the car's real average: 880 km between the first and last day.
    assert result.extra["km_per_day"][1] == pytest.approx(880.0 / 29.0, abs=0.01)


def test_a_healthy_car_with_worn_pads_is_no_fault() -> None:
    features = fleet(1)
    features.pad_wear_pct[0, 0] = np.round(91.0 + 2.0 * (ODOMETER - 50_000.0) / 1000.0)
    assessment = assess_fleet(features, NOW, SETTINGS)
    assert assessment.findings == []
    assert len(assessment.clearances) == 4


def test_a_pad_change_restarts_the_trend() -> None:
    features = fleet(1)
    driven = ODOMETER - 50_000.0
    wear = np.round(50.0 + 0.03 * driven)
    wear[20:] = np.round(3.0 + 0.002 * (driven[20:] - driven[20]))  # new pads, healthy
    features.pad_wear_pct[0, 0] = wear
    result = assess_brake_pads(features, now_day=30.0, settings=SETTINGS)
    assert not result.alert[0] and result.clear[0]
    assert result.trend.reset_x[0] == pytest.approx(ODOMETER[20])


def test_too_little_distance_is_not_judged() -> None:
    features = fleet(1)
    features.odometer_km[0] = 50_000.0 + 2.0 * np.arange(DAYS)  # 58 km in a month
    features.pad_wear_pct[0, 0] = np.round(60.0 + 0.05 * (features.odometer_km[0] - 50_000.0))
    result = assess_brake_pads(features, now_day=30.0, settings=SETTINGS)
    assert not result.alert.any() and not result.clear.any()


def test_daily_distance_ignores_missing_days() -> None:
    odometer = np.array([[100.0, np.nan, 160.0, np.nan, 220.0], [np.nan] * 5])
    km = daily_distance_km(odometer)
    assert km[0] == pytest.approx(30.0)
    assert np.isnan(km[1])
