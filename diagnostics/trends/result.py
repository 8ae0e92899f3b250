"""What a trend model hands the engine: per key (vehicle, wheel), the trend, the predicted
failure day, and whether to raise a finding, clear the key, or leave it as it is.

Days are counted from the start of the feature window (day column 0 starts at 0.0), so that the
engine turns them into datetimes with one addition. A daily value stands for its day's middle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from diagnostics.findings import AlertType
from diagnostics.settings import TrendSettings
from diagnostics.trends.toward_threshold import (
    Decision,
    FailureModel,
    SeriesTrend,
    failure_confidence,
    fit_toward_threshold,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

NO_WHEEL = -1


@dataclass(frozen=True, slots=True)
class TrendResult:
    alert_type: AlertType
    model: FailureModel
    vehicle: IntArray  # per key: row of DailyFeatures.vins
    wheel: IntArray  # per key: index in WHEELS, NO_WHEEL for a whole-vehicle component
    trend: SeriesTrend
    slope: FloatArray  # signed slope in slope_unit (e.g. kPa/day, %/1000 km)
    slope_unit: str
    value_unit: str
    failure_day: FloatArray  # predicted threshold crossing, days since window start; NaN: none
    last_day_end: FloatArray  # end of the newest day the fit used, days since window start
    confidence: FloatArray
    alert: BoolArray  # raise (or keep) a finding
    clear: BoolArray  # evaluated and healthy: clear the key
    #: More evidence per key (name -> values), e.g. the daily distance behind a pad forecast.
    extra: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def keys(self) -> int:
        return int(self.vehicle.shape[0])


def decision(
    settings: TrendSettings,
    *,
    min_points: int | None = None,
    min_t: float | None = None,
    windows: tuple[int, ...] | None = None,
) -> Decision:
    """The shared decision settings, with a model's own minimum points, t or windows."""
    return Decision(
        min_points=settings.trend_min_days if min_points is None else min_points,
        min_t=settings.trend_min_t if min_t is None else min_t,
        windows=settings.trend_fit_windows_days if windows is None else windows,
    )


def day_midpoints(days: int) -> FloatArray:
    return np.arange(days, dtype=np.float64) + 0.5


def decide(
    failure_day: FloatArray, now_day: float, trend: SeriesTrend, settings: TrendSettings
) -> tuple[BoolArray, BoolArray]:
    """(alert, clear): alert when the rate is abnormal and the failure is due within the
    horizon (or past); clear when there is enough data and the key is plainly healthy (not
    even a suspicious rate, or a failure further out than the clear horizon). Keys in between,
    or without enough data, are left alone, so an alert does not flap on a wobbling estimate."""
    days_left = failure_day - now_day
    with np.errstate(invalid="ignore"):
        due = days_left <= settings.trend_horizon_days
        far = ~(days_left <= settings.trend_clear_horizon_days)  # NaN (never) counts as far
    alert = trend.abnormal & due
    clear = trend.enough & ~alert & (~trend.suspicious | far)
    return alert, clear


def time_trend(
    alert_type: AlertType,
    y: FloatArray,
    model: FailureModel,
    *,
    vehicle: IntArray,
    wheel: IntArray,
    now_day: float,
    settings: TrendSettings,
    slope_unit: str,
    value_unit: str,
    rule: Decision | None = None,
) -> TrendResult:
    """A model whose feature is a daily series over time (rows of ``y``: keys, columns: days);
    ``rule`` defaults to the shared :func:`decision`."""
    x = day_midpoints(y.shape[1])
    trend = fit_toward_threshold(x, y, model, rule or decision(settings))
    failure_day = trend.crossing_x
    alert, clear = decide(failure_day, now_day, trend, settings)
    confidence = failure_confidence(
        trend, model, settings.trend_horizon_days, settings.trend_full_confidence_days
    )
    return TrendResult(
        alert_type=alert_type,
        model=model,
        vehicle=vehicle,
        wheel=wheel,
        trend=trend,
        slope=trend.fit.slope,
        slope_unit=slope_unit,
        value_unit=value_unit,
        failure_day=failure_day,
        last_day_end=trend.fit.x_last + 0.5,
        confidence=confidence,
        alert=alert,
        clear=clear,
    )


def per_vehicle(vehicles: int) -> tuple[IntArray, IntArray]:
    """(vehicle, wheel) key arrays for one key per vehicle."""
    return np.arange(vehicles, dtype=np.int64), np.full(vehicles, NO_WHEEL, dtype=np.int64)


def per_wheel(vehicles: int, wheels: int) -> tuple[IntArray, IntArray]:
    """(vehicle, wheel) key arrays for (vehicles, wheels) flattened row-major."""
    return (
        np.repeat(np.arange(vehicles, dtype=np.int64), wheels),
        np.tile(np.arange(wheels, dtype=np.int64), vehicles),
    )
