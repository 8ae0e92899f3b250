"""Where a series was reset: a refill, a tyre, pad or battery change, a repaired thermostat.

A repair makes a feature jump back towards healthy in one step, far more than its day-to-day
noise. A trend fitted across that jump would mix two components (the old, failing one and the
new one), so each series is fitted only from its last reset on. Vectorised: the series are
sorted by x once (missing points last), and a reset is a step between consecutive points of at
least ``jump`` towards healthy; with ``confirm`` > 1 it must be a level shift: each of the
``confirm`` points after it beyond each of the ``confirm`` points before it (for noisy
features, where one good day is not yet a repair).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from diagnostics.trends.errors import RegressionInputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ResetSplit:
    keep: BoolArray  # points at or after the last reset (all valid points when none)
    reset_x: FloatArray  # x of the first point after the last reset; NaN when none
    reset_column: IntArray  # that point's column; -1 when none


def _shifted(packed: FloatArray, offset: int) -> FloatArray:
    """Column j (j = 1 .. points-1) of the result is ``packed[:, j + offset]``, NaN where that
    is outside the row."""
    rows, points = packed.shape
    out = np.full((rows, points - 1), np.nan)
    lo, hi = max(0, -(1 + offset)), min(points - 1, points - 1 - offset)
    if lo < hi:
        out[:, lo:hi] = packed[:, 1 + offset + lo : 1 + offset + hi]
    return out


def _steps(packed: FloatArray, sign: float, jump: float, confirm: int) -> BoolArray:
    """For each point j >= 1: do the ``confirm`` points from j on all lie at least ``jump``
    beyond (towards healthy) each of the ``confirm`` points before j? With one point each that
    is a plain step; with more, a level shift that a single good or bad day cannot fake.
    Points missing after j fail the test (not confirmed yet); missing before j (the row's
    start) are not held against it, but the point right before j must exist."""
    rows, points = packed.shape
    step = np.ones((rows, points - 1), dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        for ahead in range(confirm):
            after = _shifted(packed, ahead)
            for back in range(confirm):
                before = _shifted(packed, -1 - back)
                ok = sign * (after - before) >= jump
                if back > 0:
                    ok |= np.isnan(before) & np.isfinite(after)
                step &= ok
    return step


def after_last_reset(
    x: FloatArray,
    y: FloatArray,
    *,
    jump: float,
    healthy_up: bool,
    confirm: int = 1,
    mask: BoolArray | None = None,
) -> ResetSplit:
    """Split each row of ``y`` (over ``x``, any order) at its last reset. ``healthy_up``: a
    reset moves the value up (pressure, voltage, state of health), else down (pad wear,
    coolant temperature)."""
    if confirm < 1:
        raise RegressionInputError(f"confirm must be at least 1, not {confirm}")
    y = np.asarray(y, dtype=np.float64)
    x = np.broadcast_to(np.asarray(x, dtype=np.float64), y.shape)
    valid = np.isfinite(x) & np.isfinite(y)
    if mask is not None:
        valid &= mask
    rows, points = y.shape
    # Sort by x with the missing points last, so each row's valid points are packed in front.
    order = np.argsort(np.where(valid, x, np.inf), axis=1, kind="stable")
    packed = np.take_along_axis(np.where(valid, y, np.nan), order, axis=1)
    sorted_x = np.take_along_axis(x, order, axis=1)
    sign = 1.0 if healthy_up else -1.0
    confirmed = np.zeros((rows, points), dtype=np.bool_)
    if points > 1:
        confirmed[:, 1:] = _steps(packed, sign, jump, confirm)
    index = np.arange(points)
    last = np.where(confirmed, index, -1).max(axis=1)
    keep_sorted = (index[None, :] >= np.maximum(last, 0)[:, None]) & np.take_along_axis(
        valid, order, axis=1
    )
    keep = np.zeros_like(valid)
    np.put_along_axis(keep, order, keep_sorted, axis=1)
    reset_x = np.where(
        last > 0, np.take_along_axis(sorted_x, np.maximum(last, 0)[:, None], axis=1)[:, 0], np.nan
    )
    column = np.take_along_axis(order, np.maximum(last, 0)[:, None], axis=1)[:, 0]
    return ResetSplit(keep, reset_x, np.where(last > 0, column, -1).astype(np.int64))
