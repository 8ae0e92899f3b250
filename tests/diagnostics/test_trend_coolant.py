"""Coolant model: rising peak temperature at load, on steady and on noisy trip peaks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from diagnostics.features import DailyFeatures
from diagnostics.findings import AlertType, Severity
from diagnostics.settings import TrendSettings
from diagnostics.trend_engine import assess_fleet
from diagnostics.trends.coolant import assess_coolant

START = date(2026, 1, 10)
DAYS = 30
NOW = datetime(2026, 2, 9, tzinfo=UTC)
X = np.arange(DAYS) + 0.5
SETTINGS = TrendSettings()


def fleet(vehicles: int, seed: int = 1) -> DailyFeatures:
    rng = np.random.default_rng(seed)
    features = DailyFeatures.empty([f"ICE{i:014d}" for i in range(vehicles)], START, DAYS)
    features.coolant_steady_peak_c[:] = np.round(89.0 + rng.normal(0.0, 0.8, (vehicles, DAYS)), 1)
    features.coolant_peak_c[:] = features.coolant_steady_peak_c
    return features


def failing(onset_x: float, rate: float) -> np.ndarray:
    return 89.0 + rate * np.clip(X - onset_x, 0.0, None)


def test_a_failing_thermostat_gives_rate_crossing_and_a_finding() -> None:
    features = fleet(3)
    features.coolant_steady_peak_c[1] = failing(5.0, 1.0)  # 115 C at x = 31
    result = assess_coolant(features, now_day=30.0, settings=SETTINGS)
    assert result.alert.tolist() == [False, True, False]
    # The whole window's line (five flat days before the onset tilt it a little).
    assert result.slope[1] == pytest.approx(1.0, abs=0.08)
    assert result.failure_day[1] == pytest.approx(31.0, abs=1.5)
    assessment = assess_fleet(features, NOW, SETTINGS)
    [finding] = assessment.findings
    assert finding.type is AlertType.COOLANT_OVERHEATING
    assert finding.severity is Severity.CRITICAL
    assert "thermostat" in finding.recommended_action
    assert {c.vin for c in assessment.clearances} == {features.vins[0], features.vins[2]}


def test_healthy_engines_with_noisy_peaks_never_alert() -> None:
    rng = np.random.default_rng(9)
    features = fleet(300, seed=4)
    # Trip peaks only (hybrids): scattered by how long the engine ran, some days never warm.
    features.coolant_steady_peak_c[:] = np.nan
    trip = 84.0 + rng.normal(0.0, 4.0, (300, DAYS)) - 25.0 * (rng.random((300, DAYS)) < 0.25)
    features.coolant_peak_c[:] = trip
    result = assess_coolant(features, now_day=30.0, settings=SETTINGS)
    assert not result.alert.any()


def test_a_hybrid_is_judged_on_its_trip_peaks() -> None:
    rng = np.random.default_rng(3)
    features = fleet(1)
    features.coolant_steady_peak_c[0] = np.nan  # the engine never ran 15 min without a stop
    cold_days = rng.random(DAYS) < 0.2
    features.coolant_peak_c[0] = np.where(
        cold_days, 55.0, failing(0.0, 1.1) - 4.0 + rng.normal(0.0, 2.0, DAYS)
    )
    result = assess_coolant(features, now_day=30.0, settings=SETTINGS)
    assert result.alert[0]
    assert result.slope[0] == pytest.approx(1.1, abs=0.25)


def test_a_rise_below_the_alarm_level_waits() -> None:
    features = fleet(1)
    features.coolant_steady_peak_c[0] = failing(13.0, 0.35)  # 94.8 C now, 115 C in ~58 days
    result = assess_coolant(features, now_day=30.0, settings=SETTINGS)
    assert not result.alert[0]
    assert result.trend.rate[0] > 0.2
    lower_alarm = TrendSettings(coolant_alarm_c=92.0, trend_horizon_days=90.0)
    assert assess_coolant(features, now_day=30.0, settings=lower_alarm).alert[0]


def test_a_repair_is_a_confirmed_level_shift_not_one_cool_day() -> None:
    features = fleet(2)
    rising = failing(0.0, 0.9)
    one_cool_day = rising.copy()
    one_cool_day[27] = 80.0
    repaired = rising.copy()
    repaired[24:] = 89.0
    features.coolant_steady_peak_c[0] = one_cool_day
    features.coolant_steady_peak_c[1] = repaired
    result = assess_coolant(features, now_day=30.0, settings=SETTINGS)
    assert result.alert[0] and np.isnan(result.trend.reset_x[0])
    assert not result.alert[1]
    assert result.trend.reset_x[1] == pytest.approx(24.5)
    assert not result.clear[1]  # six days after the repair: not enough to judge yet
