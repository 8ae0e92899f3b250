"""Traction battery degradation: the state of health falls far faster than calendar ageing
(~0.005 %/day) towards 70 %, the usual end of life in battery warranties.

Feature: ``DailyFeatures.traction_soh_pct``. A replaced pack (or a BMS recalibration) lifts the
state of health back at once, which restarts the trend.
"""

from __future__ import annotations

from diagnostics.features import DailyFeatures
from diagnostics.findings import AlertType
from diagnostics.settings import TrendSettings
from diagnostics.trends.result import TrendResult, per_vehicle, time_trend
from diagnostics.trends.toward_threshold import FailureModel


def traction_failure_model(settings: TrendSettings) -> FailureModel:
    return FailureModel(
        threshold=settings.soh_failure_pct,
        falling=True,
        healthy_rate=settings.soh_healthy_loss_pct_per_day,
        min_rate=settings.soh_min_loss_pct_per_day,
        reset_jump=settings.soh_reset_jump_pct,
        resolution=settings.soh_resolution_pct,
    )


def assess_traction_battery(
    features: DailyFeatures, now_day: float, settings: TrendSettings
) -> TrendResult:
    vehicle, wheel = per_vehicle(len(features.vins))
    return time_trend(
        AlertType.TRACTION_BATTERY_DEGRADATION,
        features.traction_soh_pct,
        traction_failure_model(settings),
        vehicle=vehicle,
        wheel=wheel,
        now_day=now_day,
        settings=settings,
        slope_unit="%/day",
        value_unit="%",
    )
