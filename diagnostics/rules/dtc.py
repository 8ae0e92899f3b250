"""Diagnostic trouble codes set and cleared by the car (events topic, ``type: "dtc"``).

An active code raises a ``dtc`` finding (component = the code) with the severity, description
and recommended action of :mod:`diagnostics.dtc_catalogue`; a cleared code ends it. Events are
ordered per code by their time: an event older than the last one applied for that code arrived
late and is ignored, a resend (same time, same state) changes nothing, and when a set and a
clear carry the same time the set wins whatever order they come in, so that the outcome never
depends on delivery order.
"""

from __future__ import annotations

from diagnostics.dtc_catalogue import DtcCodeError, DtcInfo, describe
from diagnostics.findings import AlertType, Severity
from diagnostics.rule_settings import RuleSettings
from diagnostics.rules.base import DtcMemory, Emitter, VehicleState
from diagnostics.stream_input import DtcEvent


def _lookup(code: str) -> DtcInfo | None:
    """The catalogue entry of ``code``, or None when it is not a J2012 code at all."""
    try:
        return describe(code)
    except DtcCodeError:
        return None


class DtcRule:
    def __init__(self, settings: RuleSettings) -> None:
        self._max_codes = settings.max_dtc_codes_per_vehicle

    def apply(self, state: VehicleState, event: DtcEvent, out: Emitter) -> bool:
        """Apply one event; False when it was late or a resend and changed nothing."""
        code = event.code
        memory = state.dtcs.get(code)
        if memory is not None and (
            event.ts_ms < memory.ts_ms
            or (event.ts_ms == memory.ts_ms and (memory.active or not event.active))
        ):
            return False
        was_active = None if memory is None else memory.active
        state.dtcs[code] = DtcMemory(event.ts_ms, event.active)
        self._bound(state)
        if event.active and was_active is not True:
            self._raise(state, event, out)
        elif not event.active and was_active is not False:
            # Also when the code is unknown here (state evicted or restarted): the clear is
            # cheap and lets an alert opened before resolve.
            out.clearance(state.vin, AlertType.DTC, code, event.ts_ms, f"{code} cleared by the car")
        return True

    def _raise(self, state: VehicleState, event: DtcEvent, out: Emitter) -> None:
        info = _lookup(event.code)
        if info is None:
            severity, action = Severity.WARNING, "Have the car checked by a workshop soon."
            evidence: dict[str, str | bool | None] = {
                "code": event.code,
                "description": "Unrecognised trouble code (not SAE J2012)",
                "system": None,
                "authority": None,
                "known": False,
            }
        else:
            severity, action = info.severity, info.recommended_action
            evidence = {
                "code": event.code,
                "description": info.description,
                "system": info.system.value,
                "authority": info.authority.value,
                "known": info.known,
            }
        out.finding(state.vin, AlertType.DTC, event.code, severity=severity,
                    ts_ms=event.ts_ms, action=action, evidence=dict(evidence))  # fmt: skip

    def _bound(self, state: VehicleState) -> None:
        """Keep at most ``max_dtc_codes_per_vehicle`` codes: forget the oldest cleared one
        first (forgetting costs at most a repeated finding or clearance later)."""
        codes = state.dtcs
        if len(codes) <= self._max_codes:
            return
        inactive = [(m.ts_ms, c) for c, m in codes.items() if not m.active]
        pool = inactive or [(m.ts_ms, c) for c, m in codes.items()]
        del codes[min(pool)[1]]
