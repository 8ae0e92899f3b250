"""Brake pad wear (e.g. a sticking caliper): one pad wears much faster per kilometre than
braking alone wears it (~2 %/1000 km on the front axle without regeneration) and is heading for
90 % worn, where the wear sensor trips.

Pads wear with distance, not time: a car that stands still for a week does not wear its pads.
So the trend is fitted against the odometer (wear per 1000 km, which is what tells a fault from
a heavy-braking driver) and turned into days with the car's own average daily distance over
the window. A pad change drops the wear reading by tens of percent and restarts the trend.
Feature: ``DailyFeatures.pad_wear_pct`` (vehicles, wheels, days) against ``odometer_km``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from diagnostics.features import DailyFeatures
from diagnostics.findings import AlertType
from diagnostics.settings import TrendSettings
from diagnostics.trends.result import TrendResult, day_midpoints, decide, decision, per_wheel
from diagnostics.trends.toward_threshold import (
    FailureModel,
    failure_confidence,
    fit_toward_threshold,
)

FloatArray = npt.NDArray[np.float64]
KM_PER_1000 = 1000.0


def pad_failure_model(settings: TrendSettings) -> FailureModel:
    # The fit runs per km; the settings speak per 1000 km, as workshops do.
    return FailureModel(
        threshold=settings.pad_failure_pct,
        falling=False,
        healthy_rate=settings.pad_healthy_wear_pct_per_1000_km / KM_PER_1000,
        min_rate=settings.pad_min_wear_pct_per_1000_km / KM_PER_1000,
        reset_jump=settings.pad_reset_drop_pct,
        resolution=settings.pad_resolution_pct,
        min_span=settings.pad_min_span_km,
    )


def daily_distance_km(odometer_km: FloatArray) -> FloatArray:
    """Each vehicle's average distance per day over the window: odometer gain between its first
    and last reading, over the days between them (days without a reading included)."""
    days = day_midpoints(odometer_km.shape[1])
    valid = np.isfinite(odometer_km)
    first_day = np.where(valid, days, np.inf).min(axis=1)
    last_day = np.where(valid, days, -np.inf).max(axis=1)
    first_km = np.where(valid, odometer_km, np.inf).min(axis=1)
    last_km = np.where(valid, odometer_km, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_day = (last_km - first_km) / (last_day - first_day)
    return np.where(last_day > first_day, per_day, np.nan)


def assess_brake_pads(
    features: DailyFeatures, now_day: float, settings: TrendSettings
) -> TrendResult:
    vehicles, wheels, days = features.pad_wear_pct.shape
    vehicle, wheel = per_wheel(vehicles, wheels)
    model = pad_failure_model(settings)
    odometer = np.repeat(features.odometer_km, wheels, axis=0)
    trend = fit_toward_threshold(
        odometer,
        features.pad_wear_pct.reshape(-1, days),
        model,
        decision(settings),
    )
    fit = trend.fit
    # The day each key's newest used reading belongs to (pad and odometer share the column).
    day_index = np.where(trend.used, np.arange(days)[None, :], -1).max(axis=1)
    last_day_end = np.where(day_index >= 0, day_index + 1.0, np.nan)
    km_per_day = np.repeat(daily_distance_km(features.odometer_km), wheels)
    with np.errstate(invalid="ignore", divide="ignore"):
        failure_day = last_day_end + (trend.crossing_x - fit.x_last) / km_per_day
        horizon_km = settings.trend_horizon_days * km_per_day
    failure_day = np.where(km_per_day > 0.0, failure_day, np.nan)
    alert, clear = decide(failure_day, now_day, trend, settings)
    return TrendResult(
        alert_type=AlertType.BRAKE_PAD_WEAR,
        model=model,
        vehicle=vehicle,
        wheel=wheel,
        trend=trend,
        slope=fit.slope * KM_PER_1000,
        slope_unit="%/1000 km",
        value_unit="%",
        failure_day=failure_day,
        last_day_end=last_day_end,
        confidence=failure_confidence(
            trend, model, horizon_km, settings.trend_full_confidence_days
        ),
        alert=alert,
        clear=clear,
        extra={"km_per_day": km_per_day},
    )
