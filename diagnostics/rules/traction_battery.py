"""Traction battery state of health below the usual warranty end of life (70 %).

VSS ``TractionBattery.StateOfHealth`` is the car's own estimate at standard conditions; it moves
slowly, so the hold is long enough to ignore a single odd estimate, and the clear level (a pack
replacement) lies well above the raise level.
"""

from __future__ import annotations

from diagnostics.findings import AlertType
from diagnostics.rule_settings import RuleSettings
from diagnostics.rules.base import Emitter, VehicleState
from diagnostics.rules.threshold import Threshold, track
from diagnostics.stream_input import Sample

STATE_OF_HEALTH = "Vehicle.Powertrain.TractionBattery.StateOfHealth"
ACTION = (
    "The high-voltage battery has lost much of its capacity: book a visit to an authorised "
    "workshop to have it assessed (it may be covered by the battery warranty)."
)


class TractionBatteryRule:
    def __init__(self, settings: RuleSettings) -> None:
        self._spec = Threshold(
            type=AlertType.TRACTION_BATTERY_DEGRADATION,
            signal=STATE_OF_HEALTH,
            unit="percent",
            raise_at=settings.soh_raise_pct,
            clear_at=settings.soh_clear_pct,
            falling=True,
            raise_hold_s=settings.soh_hold_s,
            clear_hold_s=settings.soh_clear_hold_s,
            report_step=settings.soh_report_step_pct,
        )

    def evaluate(self, state: VehicleState, sample: Sample, out: Emitter) -> None:
        value = sample.number(STATE_OF_HEALTH)
        if value is None:
            return  # no traction battery
        track(state, self._spec, component="", ts_ms=sample.ts_ms, value=value,
              action=ACTION, out=out)  # fmt: skip
