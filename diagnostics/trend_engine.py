"""The trend engine: daily features of the whole fleet in, findings and clearances out.

:func:`assess_fleet` is pure (no I/O, ``now`` passed in): it runs every trend model
(:mod:`diagnostics.trends`) over the feature window, vectorised across the fleet, and turns the
keys they flag into :class:`~diagnostics.findings.Finding` values (severity from the predicted
time to failure, ``predicted_failure_at``, ``confidence``, the numbers behind it as evidence,
and a recommended action) and the keys they evaluated as healthy into
:class:`~diagnostics.findings.Clearance` values. Keys without enough data get neither, so an
alert is never resolved for lack of evidence alone.

In production and in the evaluation, once per day after the day ends::

    await refresh_daily_features(conn, day=day)
    features = await load_features(conn, until=day, days=settings.trend_window_days)
    assessment = assess_fleet(features, now, settings)  # now: end of ``day`` (or later)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final

import numpy as np

from diagnostics.features import WHEELS, DailyFeatures
from diagnostics.findings import Clearance, Evidence, Finding, Severity
from diagnostics.settings import TrendSettings
from diagnostics.trends.actions import recommended_action
from diagnostics.trends.brake_pads import assess_brake_pads
from diagnostics.trends.coolant import assess_coolant
from diagnostics.trends.errors import TrendError
from diagnostics.trends.low_voltage_battery import assess_low_voltage_battery
from diagnostics.trends.result import NO_WHEEL, TrendResult
from diagnostics.trends.tire_pressure import assess_tire_pressure
from diagnostics.trends.traction_battery import assess_traction_battery

TrendModel = Callable[[DailyFeatures, float, TrendSettings], TrendResult]

MODELS: Final[tuple[TrendModel, ...]] = (
    assess_tire_pressure,
    assess_low_voltage_battery,
    assess_brake_pads,
    assess_coolant,
    assess_traction_battery,
)
CLEAR_HEALTHY_RATE: Final = "trend within healthy wear"
CLEAR_FAR: Final = "no failure predicted within the clear horizon"
_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TrendAssessment:
    findings: list[Finding]
    clearances: list[Clearance]


def window_start(features: DailyFeatures) -> datetime:
    return datetime.combine(features.start, time(), tzinfo=UTC)


def run_models(
    features: DailyFeatures, now_day: float, settings: TrendSettings
) -> list[TrendResult]:
    """The numpy part of a pass: every model over the whole window."""
    return [model(features, now_day, settings) for model in MODELS]


def assess_fleet(
    features: DailyFeatures, now: datetime, settings: TrendSettings
) -> TrendAssessment:
    """Findings for the keys whose trend heads for failure within the horizon, clearances for
    the keys evaluated healthy. ``now`` (timezone-aware) is the time of the assessment, e.g.
    the end of the newest day of ``features``."""
    if now.tzinfo is None:
        raise TrendError(f"now must be timezone-aware, not {now!r}")
    start = window_start(features)
    now_day = (now - start) / _DAY
    findings: list[Finding] = []
    clearances: list[Clearance] = []
    for result in run_models(features, now_day, settings):
        findings.extend(_findings(result, features, start, now_day, settings))
        clearances.extend(_clearances(result, features, start))
    return TrendAssessment(findings, clearances)


def _component(result: TrendResult, key: int) -> str:
    wheel = int(result.wheel[key])
    return "" if wheel == NO_WHEEL else WHEELS[wheel]


def _number(value: float, digits: int) -> float | None:
    return round(float(value), digits) if math.isfinite(value) else None


def _severity(days_left: float, settings: TrendSettings) -> Severity:
    if days_left <= settings.trend_critical_within_days:
        return Severity.CRITICAL
    if days_left <= settings.trend_warning_within_days:
        return Severity.WARNING
    return Severity.INFO


def _evidence(result: TrendResult, key: int, start: datetime, days_left: float | None) -> Evidence:
    trend, fit = result.trend, result.trend.fit
    reset_column = int(trend.reset_column[key])
    evidence: Evidence = {
        "slope": _number(result.slope[key], 4),
        "slope_unit": result.slope_unit,
        "current": _number(trend.current[key], 3),
        "threshold": result.model.threshold,
        "unit": result.value_unit,
        "days_used": int(fit.n[key]),
        "r2": _number(fit.r2[key], 3),
        "residual": _number(fit.scale[key], 4),
        "slope_t": _number(trend.rate_t[key], 1),
        "days_to_failure": None if days_left is None else round(days_left, 1),
        # The day a repair (refill, new part) restarted the trend, if one did.
        "restarted_on": (start + reset_column * _DAY).date().isoformat()
        if reset_column >= 0
        else None,
        "window_days": int(trend.window_days[key]),
    }
    for name, values in result.extra.items():
        evidence[name] = _number(values[key], 3)
    return evidence


def _findings(
    result: TrendResult,
    features: DailyFeatures,
    start: datetime,
    now_day: float,
    settings: TrendSettings,
) -> list[Finding]:
    out = []
    for key in np.flatnonzero(result.alert).tolist():
        failure_day = float(result.failure_day[key])
        days_left = failure_day - now_day
        component = _component(result, key)
        future = days_left > 0.0
        out.append(
            Finding(
                vin=features.vins[int(result.vehicle[key])],
                type=result.alert_type,
                component=component,
                severity=_severity(days_left, settings),
                observed_at=start + float(result.last_day_end[key]) * _DAY,
                recommended_action=recommended_action(
                    result.alert_type, component, days_left if future else None
                ),
                confidence=round(float(result.confidence[key]), 3),
                predicted_failure_at=start + failure_day * _DAY if future else None,
                evidence=_evidence(result, key, start, days_left),
            )
        )
    return out


def _clearances(result: TrendResult, features: DailyFeatures, start: datetime) -> list[Clearance]:
    keys = np.flatnonzero(result.clear)
    if keys.size == 0:
        return []
    # Tens of thousands per pass: datetimes and names are made once per distinct value.
    ends, end_index = np.unique(result.last_day_end[keys], return_inverse=True)
    stamps = [start + float(end) * _DAY for end in ends.tolist()]
    components = ["", *WHEELS]  # index wheel + 1 (NO_WHEEL = -1 -> "")
    reasons = (CLEAR_FAR, CLEAR_HEALTHY_RATE)
    vins = features.vins
    alert_type = result.alert_type
    return [
        Clearance(vins[vehicle], alert_type, components[wheel + 1], stamps[end], reasons[healthy])
        for vehicle, wheel, end, healthy in zip(
            result.vehicle[keys].tolist(),
            result.wheel[keys].tolist(),
            end_index.tolist(),
            (~result.trend.abnormal[keys]).tolist(),
            strict=True,
        )
    ]
