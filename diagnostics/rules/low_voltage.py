"""12 V battery: resting (open-circuit) voltage below 12.0 V (~25 % charge for lead-acid, BCI).

Only a reading taken after the car has been parked with everything off for a while is a resting
voltage: while driving or charging the alternator / DC-DC converter holds ~14 V, just after
switching off the surface charge fades for an hour or so, and the sample taken as an engine
cranks dips far lower (~10.4 V) for an instant. So the rule judges only samples parked, engine
off and not charging for ``lv_rest_min_s``; any other sample breaks a pending run (an instant
dip never holds for ``lv_hold_s``) but keeps a raised condition raised (a charging voltage says
nothing about the resting one).
"""

from __future__ import annotations

from diagnostics.findings import AlertType, Evidence
from diagnostics.rule_settings import RuleSettings
from diagnostics.rules.base import Emitter, VehicleState
from diagnostics.rules.hysteresis import Verdict
from diagnostics.rules.threshold import Threshold, track
from diagnostics.stream_input import Sample

VOLTAGE = "Vehicle.LowVoltageBattery.CurrentVoltage"
IS_MOVING = "Vehicle.IsMoving"
SPEED = "Vehicle.Speed"
ENGINE_RUNNING = "Vehicle.Powertrain.CombustionEngine.IsRunning"
ENGINE_SPEED = "Vehicle.Powertrain.CombustionEngine.Speed"
IS_CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
ACTION = (
    "The 12 V battery no longer holds its charge and the car may fail to start: have the "
    "battery tested and replaced soon."
)


def observe_activity(state: VehicleState, sample: Sample) -> None:
    """Update the vehicle's moving / engine / charging flags and the start of its rest. A signal
    missing from the sample keeps its last value (cars may send only what changed)."""
    moving = sample.flag(IS_MOVING)
    if moving is None and (speed := sample.number(SPEED)) is not None:
        moving = speed > 0.0
    if moving is not None:
        state.moving = moving
    running = sample.flag(ENGINE_RUNNING)
    if running is None and (rpm := sample.number(ENGINE_SPEED)) is not None:
        running = rpm > 0.0
    if running is not None:
        state.engine_running = running
    charging = sample.flag(IS_CHARGING)
    if charging is not None:
        state.charging = charging
    if state.moving or state.engine_running or state.charging:
        state.rest_since_ms = None
    elif state.rest_since_ms is None:
        state.rest_since_ms = sample.ts_ms


class LowVoltageRule:
    def __init__(self, settings: RuleSettings) -> None:
        self._rest_min_ms = settings.lv_rest_min_s * 1000
        self._spec = Threshold(
            type=AlertType.LOW_VOLTAGE_BATTERY_DEGRADATION,
            signal=VOLTAGE,
            unit="V",
            raise_at=settings.lv_raise_v,
            clear_at=settings.lv_clear_v,
            falling=True,
            raise_hold_s=settings.lv_hold_s,
            clear_hold_s=settings.lv_clear_hold_s,
            report_step=settings.lv_report_step_v,
        )

    def evaluate(self, state: VehicleState, sample: Sample, out: Emitter) -> None:
        observe_activity(state, sample)
        ts = sample.ts_ms
        rest_since = state.rest_since_ms
        volts = sample.number(VOLTAGE)
        if rest_since is None or ts - rest_since < self._rest_min_ms:
            # Not a resting reading: break a pending run even if the sample has no voltage.
            track(state, self._spec, component="", ts_ms=ts, value=volts,
                  verdict=Verdict.UNKNOWN, action=ACTION, out=out)  # fmt: skip
            return
        if volts is None:
            return
        extra: Evidence = {"parked_s": round((ts - rest_since) / 1000.0, 3)}
        track(state, self._spec, component="", ts_ms=ts, value=volts, action=ACTION,
              extra=extra, out=out)  # fmt: skip
