"""Service due, from the car's own service counters (VSS ``Vehicle.Service``).

``DistanceToService`` (km) and ``TimeToService`` (s) count down to the next service and go
negative when it is overdue; ``IsServiceDue`` is the car's own flag. The rule raises
``service_due`` as *info* when either counter is within ``service_soon_km`` /
``service_soon_s``, as *warning* when either is at or below zero, and clears when a service
resets the counters past the "soon" levels by a margin. The flag is used only by cars that send
no counters (its meaning, "service needed now or in the near future", has no fixed horizon).
A finding is emitted when the severity changes, not as the counters tick down.
"""

from __future__ import annotations

from diagnostics.findings import AlertType, Evidence, Severity
from diagnostics.rule_settings import RuleSettings
from diagnostics.rules.base import Emitter, VehicleState
from diagnostics.stream_input import Sample

DISTANCE = "Vehicle.Service.DistanceToService"
TIME = "Vehicle.Service.TimeToService"
FLAG = "Vehicle.Service.IsServiceDue"
_DAY_S = 86_400.0


class ServiceRule:
    def __init__(self, settings: RuleSettings) -> None:
        self._soon_km = settings.service_soon_km
        self._soon_s = float(settings.service_soon_s)
        self._clear_km = settings.service_soon_km + settings.service_clear_margin_km
        self._clear_s = float(settings.service_soon_s + settings.service_clear_margin_s)

    def evaluate(self, state: VehicleState, sample: Sample, out: Emitter) -> None:
        km, secs, flag = sample.number(DISTANCE), sample.number(TIME), sample.flag(FLAG)
        if km is None and secs is None and flag is None:
            return
        # Counters missing from this sample keep their last value.
        state.service_km = km if km is not None else state.service_km
        state.service_s = secs if secs is not None else state.service_s
        state.service_flag = flag if flag is not None else state.service_flag
        level, reset = self._level(state.service_km, state.service_s, state.service_flag)
        current = state.service
        if level is None:
            if current is not None and reset:
                state.service = None
                out.clearance(state.vin, AlertType.SERVICE_DUE, "", sample.ts_ms,
                              "service counters reset")  # fmt: skip
            return
        if level is current:
            return
        state.service = level
        out.finding(state.vin, AlertType.SERVICE_DUE, "", severity=level, ts_ms=sample.ts_ms,
                    action=self._action(state, level), evidence=self._evidence(state))  # fmt: skip

    def _level(
        self, km: float | None, secs: float | None, flag: bool | None
    ) -> tuple[Severity | None, bool]:
        """(severity the counters call for, whether they are clearly past the "soon" levels)."""
        if km is None and secs is None:
            return (Severity.INFO if flag else None), flag is False
        if (km is not None and km <= 0.0) or (secs is not None and secs <= 0.0):
            return Severity.WARNING, False
        if (km is not None and km <= self._soon_km) or (secs is not None and secs <= self._soon_s):
            return Severity.INFO, False
        reset = (km is None or km > self._clear_km) and (secs is None or secs > self._clear_s)
        return None, reset

    def _evidence(self, state: VehicleState) -> Evidence:
        km, secs = state.service_km, state.service_s
        return {
            "distance_to_service_km": None if km is None else round(km, 1),
            "time_to_service_days": None if secs is None else round(secs / _DAY_S, 2),
            "is_service_due": state.service_flag,
            "due_soon_km": self._soon_km,
            "due_soon_days": round(self._soon_s / _DAY_S, 2),
        }

    def _action(self, state: VehicleState, level: Severity) -> str:
        km, secs = state.service_km, state.service_s
        if level is Severity.WARNING:
            overdue = (km is not None and km < 0.0) or (secs is not None and secs < 0.0)
            when = "overdue" if overdue else "due now"
            return f"Your car's service is {when}: book a service appointment as soon as possible."
        parts = []
        if km is not None and km <= self._soon_km:
            parts.append(f"{max(km, 0.0):.0f} km")
        if secs is not None and secs <= self._soon_s:
            parts.append(f"{max(secs / _DAY_S, 0.0):.0f} days")
        within = " or ".join(parts) if parts else "the near future"
        return f"Your car's service is due within {within}: book an appointment at a workshop."
