"""One signal against one threshold, with hysteresis and hold times: the shared core of the
coolant, 12 V, traction battery, brake pad and tyre leak rules.

A finding is emitted when the condition raises and again only when the value has worsened by
``report_step`` since the last finding (the alert lifecycle upserts; a finding per sample would
cost a database write per sample). A clearance is emitted when a raised condition clears.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.findings import AlertType, Evidence, Severity
from diagnostics.rules.base import Emitter, VehicleState
from diagnostics.rules.hysteresis import Transition, Verdict, judge_above, judge_below


@dataclass(frozen=True, slots=True)
class Threshold:
    """A condition on one signal. ``falling``: the condition is "value below ``raise_at``"
    (cleared at or above ``clear_at``); otherwise "value at or above ``raise_at``" (cleared
    below ``clear_at``)."""

    type: AlertType
    signal: str
    unit: str  # VSS unit of the signal, for the evidence
    raise_at: float
    clear_at: float
    falling: bool
    raise_hold_s: int
    clear_hold_s: int
    report_step: float
    severity: Severity = Severity.CRITICAL

    def judge(self, value: float) -> Verdict:
        if self.falling:
            return judge_below(value, self.raise_at, self.clear_at)
        return judge_above(value, self.raise_at, self.clear_at)


def track(
    state: VehicleState,
    spec: Threshold,
    *,
    component: str,
    ts_ms: int,
    value: float | None,
    action: str,
    extra: Evidence | None = None,
    verdict: Verdict | None = None,
    out: Emitter,
) -> None:
    """Feed one observation of ``spec``'s signal into the vehicle's condition and emit what
    changed. ``value`` None, or ``verdict`` UNKNOWN, means no evidence in this sample.
    ``verdict`` overrides the plain comparison (e.g. a suppressed condition)."""
    if value is None:
        verdict = Verdict.UNKNOWN
    elif verdict is None:
        verdict = spec.judge(value)
    cond = state.conditions.get((spec.type, component))
    if cond is None:
        if verdict is not Verdict.BAD:
            return  # healthy and nothing pending: no state needed (the common case)
        cond = state.condition(spec.type, component)
    transition = cond.update(
        ts_ms,
        verdict,
        raise_hold_ms=spec.raise_hold_s * 1000,
        clear_hold_ms=spec.clear_hold_s * 1000,
    )
    if transition is Transition.CLEARED:
        level = "at or above" if spec.falling else "below"
        reason = f"{spec.signal} back {level} {spec.clear_at:g} {spec.unit}"
        out.clearance(state.vin, spec.type, component, ts_ms, reason)
        return
    if value is None or verdict is not Verdict.BAD or not cond.raised:
        return
    if transition is Transition.NONE and not cond.worsened(
        value, spec.report_step, falling=spec.falling
    ):
        return
    onset = cond.onset_ms if cond.onset_ms is not None else ts_ms
    evidence: Evidence = {
        "signal": spec.signal,
        "value": round(value, 3),
        "unit": spec.unit,
        "threshold": spec.raise_at,
        "clear_level": spec.clear_at,
        "held_s": round((ts_ms - onset) / 1000.0, 3),
        "onset_ms": onset,
    }
    if extra:
        evidence.update(extra)
    cond.reported = value
    out.finding(state.vin, spec.type, component, severity=spec.severity, ts_ms=ts_ms,
                action=action, evidence=evidence)  # fmt: skip
