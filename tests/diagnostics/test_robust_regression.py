"""The robust line kernel and reset detection on series with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from diagnostics.trends.errors import RegressionInputError
from diagnostics.trends.resets import after_last_reset
from diagnostics.trends.robust_regression import huber_line

DAYS = np.arange(30, dtype=np.float64) + 0.5


def test_exact_lines_are_recovered_row_by_row() -> None:
    slopes = np.array([-1.5, 0.0, 0.25, 3.0])
    intercepts = np.array([240.0, 12.6, 88.0, 10.0])
    y = intercepts[:, None] + slopes[:, None] * DAYS[None, :]
    fit = huber_line(DAYS, y)
    np.testing.assert_allclose(fit.slope, slopes, atol=1e-9)
    np.testing.assert_allclose(fit.intercept, intercepts, atol=1e-9)
    assert fit.n.tolist() == [30, 30, 30, 30]
    np.testing.assert_allclose(fit.r2[[0, 2, 3]], 1.0)
    assert fit.x_first.tolist() == [0.5] * 4 and fit.x_last.tolist() == [29.5] * 4


def test_noise_gives_the_slope_within_its_standard_error() -> None:
    rng = np.random.default_rng(7)
    rows = 400
    y = 240.0 - 1.2 * DAYS[None, :] + rng.normal(0.0, 2.0, (rows, DAYS.size))
    fit = huber_line(DAYS, y)
    error = fit.slope + 1.2
    # The reported standard error is honest: ~95 % of the rows lie within two of them.
    within = np.mean(np.abs(error) <= 2.0 * fit.slope_se)
    assert 0.9 <= within <= 0.99
    assert abs(float(np.mean(fit.slope)) + 1.2) < 0.01
    assert 1.6 < float(np.median(fit.scale)) < 2.4


def test_outliers_barely_move_the_huber_line_but_tilt_least_squares() -> None:
    y = 100.0 + 0.5 * DAYS
    spoiled = y.copy()
    spoiled[[24, 27, 29]] = [40.0, 20.0, 10.0]  # three glitches near the end
    fit = huber_line(DAYS, spoiled[None, :], min_scale=0.1)
    ols_slope = np.polyfit(DAYS, spoiled, 1)[0]
    assert abs(fit.slope[0] - 0.5) < 0.02
    assert abs(ols_slope - 0.5) > 0.5


def test_gaps_and_order_do_not_matter() -> None:
    rng = np.random.default_rng(3)
    y = 12.6 - 0.02 * DAYS + rng.normal(0.0, 0.01, DAYS.size)
    y[[2, 5, 6, 7, 19]] = np.nan  # days without a value
    order = rng.permutation(DAYS.size)
    fit = huber_line(DAYS, y[None, :], min_scale=0.005)
    shuffled = huber_line(DAYS[order][None, :], y[order][None, :], min_scale=0.005)
    assert fit.n[0] == 25
    np.testing.assert_allclose(shuffled.slope, fit.slope, rtol=1e-9)
    np.testing.assert_allclose(shuffled.intercept, fit.intercept, rtol=1e-9)
    assert abs(fit.slope[0] + 0.02) < 0.002


def test_mask_excludes_points() -> None:
    y = np.where(DAYS < 10, 50.0, 50.0 + 2.0 * (DAYS - 10))
    fit = huber_line(DAYS, y[None, :], (DAYS >= 10)[None, :])
    assert fit.n[0] == 20
    assert fit.slope[0] == pytest.approx(2.0)


def test_too_few_points_give_no_slope() -> None:
    y = np.full((3, DAYS.size), np.nan)
    y[1, 4] = 200.0  # one point
    y[2, [4, 9]] = [200.0, 195.0]  # two points: a line, but no evidence of its error
    fit = huber_line(DAYS, y)
    assert fit.n.tolist() == [0, 1, 2]
    assert np.isnan(fit.slope[:2]).all()
    assert fit.slope[2] == pytest.approx(-1.0)
    assert fit.slope_se[2] == np.inf


def test_resolution_floors_the_scale_of_perfectly_quantised_data() -> None:
    y = np.round(60.0 + 0.001 * DAYS)  # flat integers: zero residuals
    fit = huber_line(DAYS, y[None, :], min_scale=0.5)
    assert fit.scale[0] == pytest.approx(0.5)
    assert np.isfinite(fit.slope_se[0]) and fit.slope_se[0] > 0.0


def test_bad_shapes_are_refused_with_a_code() -> None:
    with pytest.raises(RegressionInputError) as caught:
        huber_line(DAYS, DAYS)  # one-dimensional y
    assert caught.value.code == "diagnostics_regression_input_invalid"
    with pytest.raises(RegressionInputError):
        huber_line(DAYS, DAYS[None, :], np.ones((2, 30), dtype=bool))


def test_a_refill_restarts_the_series_after_the_jump() -> None:
    y = np.concatenate([240.0 - 3.0 * np.arange(15), 238.0 - 2.0 * np.arange(15)])
    split = after_last_reset(DAYS, y[None, :], jump=8.0, healthy_up=True)
    assert split.keep[0].tolist() == [False] * 15 + [True] * 15
    assert split.reset_x[0] == pytest.approx(15.5)


def test_the_last_of_several_resets_counts_and_order_does_not_matter() -> None:
    y = np.array([50.0, 60, 70, 80, 20, 30, 40, 5, 10, 15])  # pads replaced twice
    x = np.arange(10.0)
    order = np.array([9, 2, 5, 0, 7, 1, 8, 3, 6, 4])
    split = after_last_reset(x[order][None, :], y[order][None, :], jump=5.0, healthy_up=False)
    kept = sorted(x[order][split.keep[0]].tolist())
    assert kept == [7.0, 8.0, 9.0]
    assert split.reset_x[0] == 7.0


def test_no_reset_without_a_big_enough_step() -> None:
    y = 240.0 - 1.0 * DAYS + np.where(DAYS > 20, 5.0, 0.0)  # a small top-up is no reset
    split = after_last_reset(DAYS, y[None, :], jump=8.0, healthy_up=True)
    assert split.keep.all()
    assert np.isnan(split.reset_x[0])


def test_a_noisy_series_needs_a_confirmed_level_shift() -> None:
    base = np.full(30, 100.0)
    one_bad_day = base.copy()
    one_bad_day[20] = 70.0
    repaired = base.copy()
    repaired[22:] = 88.0
    rows = np.stack([one_bad_day, repaired])
    split = after_last_reset(DAYS, rows, jump=10.0, healthy_up=False, confirm=3)
    assert np.isnan(split.reset_x[0]) and split.keep[0].all()
    assert split.reset_x[1] == pytest.approx(22.5)
    # The same single bad day is a reset when one point is enough.
    single = after_last_reset(DAYS, rows[:1], jump=10.0, healthy_up=False, confirm=1)
    assert single.reset_x[0] == pytest.approx(20.5)
    with pytest.raises(RegressionInputError):
        after_last_reset(DAYS, rows, jump=10.0, healthy_up=False, confirm=0)
