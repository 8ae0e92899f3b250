"""Typed errors of the trend models and their daily features (stable ``code`` attributes)."""

from __future__ import annotations


class TrendError(ValueError):
    """Input the trend models cannot work with."""

    code = "diagnostics_trend_invalid"


class FeatureWindowError(TrendError):
    """A feature window that is malformed (bad shape, no days) or unreadable."""

    code = "diagnostics_feature_window_invalid"


class RegressionInputError(TrendError):
    """Arrays given to the regression kernel that do not fit together."""

    code = "diagnostics_regression_input_invalid"
