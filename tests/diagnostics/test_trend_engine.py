"""assess_fleet: findings and clearances from the models, severities, times, evidence."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from diagnostics.features import DailyFeatures
from diagnostics.findings import GRADUAL_TYPES, AlertType, Severity
from diagnostics.settings import TrendSettings
from diagnostics.trend_engine import MODELS, assess_fleet, run_models
from diagnostics.trends.errors import TrendError

START = date(2026, 4, 1)
DAYS = 30
END_OF_WINDOW = datetime(2026, 5, 1, tzinfo=UTC)
X = np.arange(DAYS) + 0.5


def healthy_fleet(vehicles: int) -> DailyFeatures:
    features = DailyFeatures.empty([f"WVW{i:014d}" for i in range(vehicles)], START, DAYS)
    features.tire_cold_kpa[:] = 238.0 - 0.1 * X
    features.lv_resting_v[:] = 12.65
    features.odometer_km[:] = 20_000.0 + 35.0 * (np.arange(DAYS) + 1)
    features.pad_wear_pct[:] = np.round(30.0 + 2.0 * (features.odometer_km[:, None] - 20_000) / 1e3)
    features.coolant_steady_peak_c[:] = 89.0
    features.coolant_peak_c[:] = 89.0
    features.traction_soh_pct[:] = 95.0
    return features


def test_every_gradual_type_has_a_model() -> None:
    features = healthy_fleet(1)
    types = {result.alert_type for result in run_models(features, 30.0, TrendSettings())}
    assert types == set(GRADUAL_TYPES)
    assert len(MODELS) == len(GRADUAL_TYPES)


def test_a_healthy_fleet_gets_clearances_for_every_key_it_evaluated() -> None:
    assessment = assess_fleet(healthy_fleet(3), END_OF_WINDOW, TrendSettings())
    assert assessment.findings == []
    # Per car: 4 tyres, the 12 V battery, 4 pads, coolant, traction battery.
    assert len(assessment.clearances) == 3 * 11
    assert {c.observed_at for c in assessment.clearances} == {END_OF_WINDOW}


def test_severity_follows_the_days_left() -> None:
    features = healthy_fleet(3)
    # Now is day 30.0: failures at day 65 (info beyond 30 days when the horizon allows it),
    # day 45 (warning) and day 33 (critical).
    for vehicle, failure_day in enumerate((65.0, 45.0, 33.0)):
        features.lv_resting_v[vehicle] = 12.0 + 0.65 * (failure_day - X) / failure_day
    settings = TrendSettings(trend_horizon_days=45.0)
    findings = {f.vin: f for f in assess_fleet(features, END_OF_WINDOW, settings).findings}
    severities = [findings[vin].severity for vin in features.vins]
    assert severities == [Severity.INFO, Severity.WARNING, Severity.CRITICAL]
    predicted = findings[features.vins[1]].predicted_failure_at
    assert predicted is not None
    assert abs(predicted - (END_OF_WINDOW + timedelta(days=15))) < timedelta(hours=1)


def test_observed_at_is_the_end_of_the_newest_day_used() -> None:
    features = healthy_fleet(1)
    features.tire_cold_kpa[0, 0] = 240.0 - 2.0 * X
    features.tire_cold_kpa[0, 0, 25:] = np.nan  # the car stopped reporting five days ago
    [finding] = assess_fleet(features, END_OF_WINDOW, TrendSettings()).findings
    assert finding.observed_at == datetime(2026, 4, 26, tzinfo=UTC)
    # The prediction is an instant on the trend line, whatever the time of the pass.
    later = assess_fleet(features, END_OF_WINDOW + timedelta(days=2), TrendSettings())
    assert later.findings[0].predicted_failure_at == finding.predicted_failure_at


def test_evidence_is_json_with_the_numbers_behind_the_finding() -> None:
    features = healthy_fleet(1)
    features.traction_soh_pct[0] = 90.0 - 0.5 * X  # 70 % at day 40
    features.traction_soh_pct[0, 7] = np.nan
    [finding] = assess_fleet(features, END_OF_WINDOW, TrendSettings()).findings
    assert finding.type is AlertType.TRACTION_BATTERY_DEGRADATION
    evidence = finding.evidence
    json.dumps(evidence, allow_nan=False)  # plain JSON scalars, no NaN
    assert evidence["slope"] == pytest.approx(-0.5)
    assert evidence["slope_unit"] == "%/day"
    assert evidence["current"] == pytest.approx(90.0 - 0.5 * 29.5)
    assert evidence["threshold"] == 70.0
    assert evidence["days_used"] == 29
    assert evidence["r2"] == pytest.approx(1.0)
    assert evidence["days_to_failure"] == pytest.approx(10.0, abs=0.01)
    assert evidence["restarted_on"] is None
    assert 0.0 < finding.confidence <= 1.0
    assert finding.recommended_action.endswith(".")


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(TrendError) as caught:
        assess_fleet(healthy_fleet(1), datetime(2026, 5, 1), TrendSettings())
    assert caught.value.code == "diagnostics_trend_invalid"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLINK_DIAGNOSTICS_TREND_HORIZON_DAYS", "14")
    monkeypatch.setenv("FLEETLINK_DIAGNOSTICS_TREND_FIT_WINDOWS_DAYS", "[10]")
    settings = TrendSettings()
    assert settings.trend_horizon_days == 14.0
    assert settings.trend_fit_windows_days == (10,)
    features = healthy_fleet(1)
    features.lv_resting_v[0] = 12.0 + 0.65 * (50.0 - X) / 50.0  # 20 days left: beyond 14
    assert assess_fleet(features, END_OF_WINDOW, settings).findings == []
    monkeypatch.delenv("FLEETLINK_DIAGNOSTICS_TREND_HORIZON_DAYS")
    assert len(assess_fleet(features, END_OF_WINDOW, TrendSettings()).findings) == 1
