"""Coolant overheating (failing thermostat or pump): the coolant's peak temperature at load
rises day after day towards 115 C, where the engine overheats (P0217).

Features: ``DailyFeatures.coolant_steady_peak_c`` (the day's highest coolant temperature after
15 minutes of uninterrupted engine running) where a car has enough such days, else
``coolant_peak_c`` (10 minutes into a trip, for hybrids whose engine stops and starts). The
latter is noisy (how long the engine ran that day decides how close the coolant came to its
thermostat's target), so a repair must be
confirmed by several days in a row at a clearly lower level before the trend restarts, days
whose peak never reached operating temperature are left out (a plug-in hybrid that started its
engine cold for a minute says nothing about the thermostat), and the robust fit discounts the
odd day of short trips. Because of that noise a rate alone is not enough: the fitted peak must
also be past ``coolant_alarm_c`` (95 C, above the ~93 C a healthy thermostat holds at load),
and the model has its own, longer minimum of days and look-back window.
"""

from __future__ import annotations

import numpy as np

from diagnostics.features import DailyFeatures
from diagnostics.findings import AlertType
from diagnostics.settings import TrendSettings
from diagnostics.trends.result import TrendResult, decision, per_vehicle, time_trend
from diagnostics.trends.toward_threshold import FailureModel

RESET_CONFIRM_DAYS = 3


def coolant_failure_model(settings: TrendSettings) -> FailureModel:
    return FailureModel(
        threshold=settings.coolant_failure_c,
        falling=False,
        healthy_rate=settings.coolant_healthy_rise_c_per_day,
        min_rate=settings.coolant_min_rise_c_per_day,
        reset_jump=settings.coolant_reset_drop_c,
        resolution=settings.coolant_resolution_c,
        reset_confirm=RESET_CONFIRM_DAYS,
        alarm_level=settings.coolant_alarm_c,
    )


def assess_coolant(features: DailyFeatures, now_day: float, settings: TrendSettings) -> TrendResult:
    vehicle, wheel = per_vehicle(len(features.vins))
    with np.errstate(invalid="ignore"):
        steady, trip = (
            np.where(peak >= settings.coolant_warm_min_c, peak, np.nan)
            for peak in (features.coolant_steady_peak_c, features.coolant_peak_c)
        )
    # Judge a car on its steady-state peaks when it has enough of them (a conventional engine
    # on longer trips: tight, within a degree or two); otherwise (hybrids, short trips) on its
    # trip peaks, which scatter with how long the engine ran.
    use_steady = np.isfinite(steady).sum(axis=1) >= settings.coolant_min_days
    warm = np.where(use_steady[:, None], steady, trip)
    return time_trend(
        AlertType.COOLANT_OVERHEATING,
        warm,
        coolant_failure_model(settings),
        vehicle=vehicle,
        wheel=wheel,
        now_day=now_day,
        settings=settings,
        slope_unit="C/day",
        value_unit="C",
        rule=decision(
            settings,
            min_points=settings.coolant_min_days,
            min_t=settings.coolant_min_t,
            windows=settings.coolant_fit_windows_days,
        ),
    )
