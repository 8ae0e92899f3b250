"""The booking-suggestion policy: which alerts get a suggested booking, which skill the job
needs, by when, and which offer to take. Pure: no I/O, ``now`` passed in.

- Alerts of severity ``warning`` or ``critical`` that are not resolved are considered when first
  seen at that severity and again whenever the severity rises (an alert once suggested at
  ``warning`` is looked at again at ``critical``), never twice at the same severity.
- The deadline is the predicted failure, capped by a horizon per severity (14 days for a
  warning, 3 for a critical alert); the earliest slot starts two hours from now, giving the
  owner time to react.
- Among the providers with a free slot ending by the deadline, a mobile van (offered only for
  an electric car, within the van's range, with the skill) comes first: the car need not be
  driven. Otherwise the nearest workshop, then the earliest slot. If nothing is free in time,
  the earliest free slot within the horizon is suggested anyway, marked late: better than no
  appointment for a car that is going to fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
SUGGEST_FROM = "warning"
LEAD_TIME = timedelta(hours=2)
HORIZON: dict[str, timedelta] = {"warning": timedelta(days=14), "critical": timedelta(days=3)}
SUGGESTION_RADIUS_KM = 50.0
DEFAULT_SKILL = "diagnostics"
SKILL_BY_ALERT_TYPE: dict[str, str] = {
    "tire_slow_leak": "tyres",
    "tire_pressure_loss": "tyres",
    "brake_pad_wear": "brakes",
    "traction_battery_degradation": "ev_high_voltage",
    "low_voltage_battery_degradation": "diagnostics",
    "coolant_overheating": "diagnostics",
    "dtc": "diagnostics",
    "service_due": "diagnostics",
}


class Outcome(StrEnum):
    """What the suggester decided for an alert (table ``booking_suggestions``)."""

    BOOKED = "booked"
    BOOKED_LATE = "booked_late"
    BELOW_THRESHOLD = "below_threshold"
    ALREADY_BOOKED = "already_booked"
    NO_OWNER = "no_owner"
    NO_POSITION = "no_position"
    NO_CAPACITY = "no_capacity"
    ALERT_CLOSED = "alert_closed"


def required_skill(alert_type: str) -> str:
    if alert_type in SKILL_BY_ALERT_TYPE:
        return SKILL_BY_ALERT_TYPE[alert_type]
    return "tyres" if alert_type.startswith("tire_") else DEFAULT_SKILL


def triage(severity: str, status: str, previous_severity: str | None) -> Outcome | None:
    """None: look for a booking now. Otherwise why not (recorded only for an alert not seen
    before; a repeat at the same severity records nothing, which makes events idempotent)."""
    if status == "resolved":
        return Outcome.ALERT_CLOSED
    rank = SEVERITY_RANK.get(severity, 0)
    if rank < SEVERITY_RANK[SUGGEST_FROM]:
        return Outcome.BELOW_THRESHOLD
    if previous_severity is not None and SEVERITY_RANK.get(previous_severity, 0) >= rank:
        return Outcome.ALREADY_BOOKED
    return None


@dataclass(frozen=True, slots=True)
class Window:
    earliest: datetime  # first slot start considered
    deadline: datetime  # slots ending by then are in time
    horizon_end: datetime  # nothing later is suggested at all


def booking_window(severity: str, predicted_failure_at: datetime | None, now: datetime) -> Window:
    earliest = now + LEAD_TIME
    horizon_end = now + HORIZON.get(severity, HORIZON["warning"])
    deadline = horizon_end
    if predicted_failure_at is not None:
        deadline = min(horizon_end, predicted_failure_at)
    return Window(earliest, max(deadline, earliest), horizon_end)


@dataclass(frozen=True, slots=True)
class Offer:
    """A provider's earliest free slot."""

    provider: str  # centre id, or van id
    mobile: bool
    distance_km: float
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Choice:
    offer: Offer
    late: bool


def rank_offers(offers: Sequence[Offer], window: Window) -> list[Choice]:
    """``offers`` in the order to try them (the first that still books wins)."""
    in_time = sorted(
        (o for o in offers if o.end <= window.deadline),
        key=lambda o: (not o.mobile, o.distance_km, o.start, o.provider),
    )
    late = sorted(
        (o for o in offers if o.end > window.deadline and o.end <= window.horizon_end),
        key=lambda o: (o.start, o.distance_km, o.provider),
    )
    return [Choice(o, False) for o in in_time] + [Choice(o, True) for o in late]
