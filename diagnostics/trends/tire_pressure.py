"""Tyre slow leak: the cold pressure (at 15 C) of one wheel falls faster than the rubber's
normal permeation (~0.1 kPa/day) and is heading for the 180 kPa TPMS warning level.

Feature: ``DailyFeatures.tire_cold_kpa`` (vehicles, wheels, days). A refill or a tyre change
lifts the pressure back by far more than a day's loss, which restarts the trend.
"""

from __future__ import annotations

from diagnostics.features import DailyFeatures
from diagnostics.findings import AlertType
from diagnostics.settings import TrendSettings
from diagnostics.trends.result import TrendResult, per_wheel, time_trend
from diagnostics.trends.toward_threshold import FailureModel


def tire_failure_model(settings: TrendSettings) -> FailureModel:
    return FailureModel(
        threshold=settings.tire_failure_kpa,
        falling=True,
        healthy_rate=settings.tire_healthy_loss_kpa_per_day,
        min_rate=settings.tire_min_loss_kpa_per_day,
        reset_jump=settings.tire_reset_jump_kpa,
        resolution=settings.tire_resolution_kpa,
    )


def assess_tire_pressure(
    features: DailyFeatures, now_day: float, settings: TrendSettings
) -> TrendResult:
    vehicles, wheels, days = features.tire_cold_kpa.shape
    vehicle, wheel = per_wheel(vehicles, wheels)
    return time_trend(
        AlertType.TIRE_SLOW_LEAK,
        features.tire_cold_kpa.reshape(vehicles * wheels, days),
        tire_failure_model(settings),
        vehicle=vehicle,
        wheel=wheel,
        now_day=now_day,
        settings=settings,
        slope_unit="kPa/day",
        value_unit="kPa",
    )
