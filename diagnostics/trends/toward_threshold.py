"""The decision every trend model shares: is a series heading for its failure threshold, clearly
faster than healthy wear, and when will it get there?

A model supplies its series (x: day or odometer; y: the feature, one row per key, one column
per day) and a :class:`FailureModel` (threshold, direction, healthy and minimum abnormal rate,
reset jump, resolution). Each series is cut at its last reset (:mod:`diagnostics.trends.resets`)
and fitted with a robust line (:mod:`diagnostics.trends.robust_regression`) over several
look-back windows at once (e.g. the last 7, 14 and 30 days): a fault that began a few days ago
shows in the short window long before it tilts a line through 30 days of healthy history,
while the long window gives every series its most precise verdict. Per series the longest
window is kept unless a shorter one shows a significantly faster, abnormal rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from diagnostics.trends.errors import RegressionInputError
from diagnostics.trends.resets import after_last_reset
from diagnostics.trends.robust_regression import LineFit, huber_line

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


#: A shorter window replaces a longer one when its rate is this many (combined) standard
#: errors higher.
WINDOW_SWITCH_Z = 2.0


@dataclass(frozen=True, slots=True)
class FailureModel:
    """How one feature fails. Rates are per x unit, counted towards the threshold."""

    threshold: float
    falling: bool  # True: failed below the threshold (pressure, voltage, health)
    healthy_rate: float  # what normal wear moves it (>= 0)
    min_rate: float  # the least rate that counts as a fault
    reset_jump: float  # a step back towards healthy at least this big is a repair
    resolution: float  # measurement resolution: floor of the residual scale
    reset_confirm: int = 1  # points that must confirm a reset (noisy features: more)
    min_span: float = 0.0  # least x range a fit must cover (e.g. km driven for pads)
    #: A fault is only called once the fitted value is past this level (None: at any level),
    #: for features whose day-to-day noise makes a rate alone unreliable (coolant peaks).
    alarm_level: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """How sure a rate must be: the points a fit needs, its t-value beyond healthy, and the
    look-back windows fitted besides the whole row (in columns)."""

    min_points: int
    min_t: float
    windows: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SeriesTrend:
    """Per series: the chosen fit since the last reset and what it says about the threshold."""

    fit: LineFit
    rate: FloatArray  # movement towards the threshold per x unit (negative: away from it)
    rate_t: FloatArray  # (rate - healthy rate) / standard error
    current: FloatArray  # fitted value at the newest point used
    crossing_x: FloatArray  # where the line meets the threshold; NaN if it never does
    reset_x: FloatArray  # x where the series restarted after a repair; NaN if it did not
    reset_column: IntArray  # the column (day) of that restart; -1 if none
    used: BoolArray  # the points the chosen fit used
    window_days: IntArray  # the look-back window chosen (columns)
    abnormal: BoolArray  # enough points and span, rate >= min_rate, t >= min_t
    enough: BoolArray  # enough points and span to judge the series at all
    #: Over the whole row, at least half the abnormal rate at half the t-value: not plainly
    #: healthy, so an open alert is not cleared (hysteresis against a wobbling estimate).
    suspicious: BoolArray


def _stack_windows(keep: BoolArray, windows: list[int]) -> BoolArray:
    """(windows, rows, points): ``keep`` restricted to each window's last columns."""
    columns = np.arange(keep.shape[1])
    recent = columns[None, :] >= keep.shape[1] - np.asarray(windows)[:, None]
    stacked: BoolArray = keep[None, :, :] & recent[:, None, :]
    return stacked


def _choose_windows(rate: FloatArray, se: FloatArray, abnormal: BoolArray) -> IntArray:
    """Per row (columns of the (windows, rows) arrays, windows shortest first): the longest
    window, unless a shorter one is abnormal and its rate significantly higher than the one
    chosen so far, i.e. the series changed recently. Preferring the longest window otherwise
    keeps the estimate unbiased: picking the most alarming of several noisy fits would not."""
    count = rate.shape[0]
    chosen = np.full(rate.shape[1], count - 1, dtype=np.int64)
    columns = np.arange(rate.shape[1])
    for window in range(count - 2, -1, -1):
        current_rate, current_se = rate[chosen, columns], se[chosen, columns]
        with np.errstate(invalid="ignore"):
            faster = rate[window] - current_rate > WINDOW_SWITCH_Z * np.hypot(
                se[window], current_se
            )
        chosen = np.where(abnormal[window] & faster, window, chosen)
    return chosen


def _screened_fit(
    x: FloatArray, y: FloatArray, keep: BoolArray, model: FailureModel, decision: Decision
) -> LineFit:
    """A short window's robust fit, computed only for the rows whose plain least-squares fit
    there shows at least half the abnormal rate at half the t-value (the only rows it could
    switch to); the others get NaN. Most series are healthy, so this saves most of the work
    of the extra windows."""
    screen = huber_line(x, y, keep, min_scale=model.resolution, iterations=0)
    rate = (-1.0 if model.falling else 1.0) * screen.slope
    with np.errstate(invalid="ignore", divide="ignore"):
        candidates = np.flatnonzero(
            (screen.n >= decision.min_points)
            & (rate >= 0.5 * model.min_rate)
            & ((rate - model.healthy_rate) / screen.slope_se >= 0.5 * decision.min_t)
        )
    rows = y.shape[0]
    nan = np.full(rows, np.nan)
    out = LineFit(
        nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), screen.n, nan.copy(), nan.copy()
    )
    if candidates.size:
        robust = huber_line(
            x[candidates], y[candidates], keep[candidates], min_scale=model.resolution
        )
        for name in ("slope", "intercept", "slope_se", "scale", "r2", "x_first", "x_last"):
            getattr(out, name)[candidates] = getattr(robust, name)
    return out


def _concatenate(fits: list[LineFit]) -> LineFit:
    """The per-window fits as one fit of (windows x rows) rows, window-major."""
    return LineFit(
        *(
            np.concatenate([getattr(f, name) for f in fits])
            for name in ("slope", "intercept", "slope_se", "scale", "r2", "n", "x_first", "x_last")
        )
    )


def fit_toward_threshold(
    x: FloatArray,
    y: FloatArray,
    model: FailureModel,
    decision: Decision,
) -> SeriesTrend:
    """Fit every row of ``y`` over ``x`` (shape (rows, points), or x shared as (points,)) in
    each look-back window of ``decision`` (the whole row is always one of them)."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise RegressionInputError(f"y must have shape (rows, points), not {y.shape}")
    rows, points = y.shape
    x = np.broadcast_to(np.asarray(x, dtype=np.float64), y.shape)
    windows = decision.windows
    if any(w < 2 for w in windows):
        raise RegressionInputError(f"windows must be at least 2 points long: {windows}")
    lengths = sorted({min(int(w), points) for w in windows} | {points})
    split = after_last_reset(
        x, y, jump=model.reset_jump, healthy_up=model.falling, confirm=model.reset_confirm
    )
    keep = _stack_windows(split.keep, lengths)  # (windows, rows, points)
    count = len(lengths)
    fits = [_screened_fit(x, y, keep[w], model, decision) for w in range(count - 1)]
    fits.append(huber_line(x, y, keep[-1], min_scale=model.resolution))
    fit = _concatenate(fits)
    toward = -1.0 if model.falling else 1.0
    rate = toward * fit.slope
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_t = np.nan_to_num((rate - model.healthy_rate) / fit.slope_se, nan=-np.inf)
        crossing = np.where(rate > 0.0, (model.threshold - fit.intercept) / fit.slope, np.nan)
        enough = (fit.n >= decision.min_points) & (fit.x_last - fit.x_first >= model.min_span)
        abnormal = enough & (rate >= model.min_rate) & (rate_t >= decision.min_t)
        suspicious = enough & (rate >= 0.5 * model.min_rate) & (rate_t >= 0.5 * decision.min_t)
        if model.alarm_level is not None:
            current = fit.predict(fit.x_last)
            abnormal &= toward * (current - model.alarm_level) >= 0.0
    chosen = _choose_windows(
        rate.reshape(count, rows), fit.slope_se.reshape(count, rows), abnormal.reshape(count, rows)
    )
    index = chosen * rows + np.arange(rows)
    chosen_fit = LineFit(
        slope=fit.slope[index],
        intercept=fit.intercept[index],
        slope_se=fit.slope_se[index],
        scale=fit.scale[index],
        r2=fit.r2[index],
        n=fit.n[index],
        x_first=fit.x_first[index],
        x_last=fit.x_last[index],
    )
    return SeriesTrend(
        fit=chosen_fit,
        rate=rate[index],
        rate_t=rate_t[index],
        current=chosen_fit.predict(chosen_fit.x_last),
        crossing_x=crossing[index],
        reset_x=split.reset_x,
        reset_column=split.reset_column,
        used=keep.reshape(count * rows, points)[index],
        window_days=np.asarray(lengths, dtype=np.int64)[chosen],
        abnormal=abnormal[index],
        # A series is judged on its longest window: that is where healthy data is most precise.
        enough=enough.reshape(count, rows)[-1],
        suspicious=suspicious.reshape(count, rows)[-1] | abnormal[index],
    )


def normal_cdf(z: FloatArray) -> FloatArray:
    """Standard normal CDF, vectorised (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7):
    numpy has no erf, and the confidence does not need scipy."""
    z = np.asarray(z, dtype=np.float64)
    u = np.abs(z) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * u)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-u * u)
    return np.asarray(0.5 * (1.0 + np.sign(z) * erf), dtype=np.float64)


def failure_confidence(
    trend: SeriesTrend, model: FailureModel, horizon_x: FloatArray | float, full_points: int
) -> FloatArray:
    """How sure the trend is that the threshold is reached within ``horizon_x`` (x units):
    the probability, under the slope's standard error, that the rate is at least the rate
    that reaches the threshold in time, scaled down while fewer than ``full_points`` points
    back it."""
    toward = -1.0 if model.falling else 1.0
    margin = toward * (model.threshold - trend.current)  # <= 0: already past the threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        needed = margin / horizon_x
        z = (trend.rate - needed) / trend.fit.slope_se
    z = np.nan_to_num(z, nan=0.0, posinf=8.0, neginf=-8.0)
    support = np.minimum(1.0, trend.fit.n / float(full_points))
    return np.asarray(np.clip(normal_cdf(z) * support, 0.0, 1.0), dtype=np.float64)
