"""Overheating now: engine coolant at or above the P0217 level for a short while.

A healthy thermostat holds the coolant near 90 C and lets it peak at ~93 C at full load; a
failing thermostat or pump lets it climb. The rule raises at 115 C held for ``overheat_hold_s``
and clears below 105 C (the levels at which the car itself sets and clears P0217).
"""

from __future__ import annotations

from diagnostics.findings import AlertType
from diagnostics.rule_settings import RuleSettings
from diagnostics.rules.base import Emitter, VehicleState
from diagnostics.rules.threshold import Threshold, track
from diagnostics.stream_input import Sample

COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
ACTION = (
    "Stop safely as soon as possible and switch the engine off: the engine is overheating. Do "
    "not drive on until a workshop has checked the cooling system (thermostat, pump, coolant)."
)


class CoolantRule:
    def __init__(self, settings: RuleSettings) -> None:
        self._spec = Threshold(
            type=AlertType.COOLANT_OVERHEATING,
            signal=COOLANT,
            unit="celsius",
            raise_at=settings.overheat_raise_c,
            clear_at=settings.overheat_clear_c,
            falling=False,
            raise_hold_s=settings.overheat_hold_s,
            clear_hold_s=settings.overheat_clear_hold_s,
            report_step=settings.overheat_report_step_c,
        )

    def evaluate(self, state: VehicleState, sample: Sample, out: Emitter) -> None:
        value = sample.number(COOLANT)
        if value is None:
            return  # a BEV, or a sample without the engine's signals
        track(state, self._spec, component="", ts_ms=sample.ts_ms, value=value,
              action=ACTION, out=out)  # fmt: skip
