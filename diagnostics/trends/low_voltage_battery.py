"""12 V battery degradation: the resting (open-circuit) voltage falls day after day towards
12.0 V (~25 % charge of a lead-acid battery, which then no longer starts the car reliably).

Feature: ``DailyFeatures.lv_resting_v`` (read 2-24 h after the car was last active, so neither
surface charge nor days of self-discharge move it). A new or recharged battery lifts the
resting voltage back at once, which restarts the trend. The cranking minimum deepens with the
same wear, but it depends on how soon after the start the car sampled it, so it is reported as
evidence only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from diagnostics.features import DailyFeatures
from diagnostics.findings import AlertType
from diagnostics.settings import TrendSettings
from diagnostics.trends.result import TrendResult, per_vehicle, time_trend
from diagnostics.trends.toward_threshold import FailureModel


def low_voltage_failure_model(settings: TrendSettings) -> FailureModel:
    return FailureModel(
        threshold=settings.lv_failure_v,
        falling=True,
        healthy_rate=settings.lv_healthy_loss_v_per_day,
        min_rate=settings.lv_min_loss_v_per_day,
        reset_jump=settings.lv_reset_jump_v,
        resolution=settings.lv_resolution_v,
    )


def newest(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each row's newest (rightmost) finite value; NaN for a row without one."""
    valid = np.isfinite(values)
    last = np.where(valid, np.arange(values.shape[1]), -1).max(axis=1)
    picked = np.take_along_axis(values, np.maximum(last, 0)[:, None], axis=1)[:, 0]
    return np.where(last >= 0, picked, np.nan)


def assess_low_voltage_battery(
    features: DailyFeatures, now_day: float, settings: TrendSettings
) -> TrendResult:
    vehicle, wheel = per_vehicle(len(features.vins))
    result = time_trend(
        AlertType.LOW_VOLTAGE_BATTERY_DEGRADATION,
        features.lv_resting_v,
        low_voltage_failure_model(settings),
        vehicle=vehicle,
        wheel=wheel,
        now_day=now_day,
        settings=settings,
        slope_unit="V/day",
        value_unit="V",
    )
    result.extra["cranking_min_v"] = newest(features.lv_cranking_min_v)
    return result
