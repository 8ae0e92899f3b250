"""Builders shared by the stream rule tests (no tests here): samples of one test vehicle at
seconds after a fixed start, and short names for the VSS signals the rules read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from diagnostics.findings import AlertType, Clearance, Finding
from diagnostics.stream_input import DtcEvent, Sample, SignalValue
from diagnostics.stream_rules import RuleOutcome, StreamRules

VIN = "WVWZZZCDZLW000001"
OTHER_VIN = "WBA5R1107NF310888"
T0_MS = 1_763_965_800_000  # Monday 2025-11-24 06:30 UTC

COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
ENGINE_RUNNING = "Vehicle.Powertrain.CombustionEngine.IsRunning"
LV = "Vehicle.LowVoltageBattery.CurrentVoltage"
SOH = "Vehicle.Powertrain.TractionBattery.StateOfHealth"
IS_MOVING = "Vehicle.IsMoving"
SPEED = "Vehicle.Speed"
IS_CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
AIR = "Vehicle.Exterior.AirTemperature"
DISTANCE = "Vehicle.Service.DistanceToService"
TIME = "Vehicle.Service.TimeToService"
DUE = "Vehicle.Service.IsServiceDue"


def pressure(wheel: str = "Row1.Left") -> str:
    row, side = wheel.split(".")
    return f"Vehicle.Chassis.Axle.{row}.Wheel.{side}.Tire.Pressure"


def tyre_temp(wheel: str = "Row1.Left") -> str:
    row, side = wheel.split(".")
    return f"Vehicle.Chassis.Axle.{row}.Wheel.{side}.Tire.Temperature"


def pad(wheel: str = "Row1.Left") -> str:
    row, side = wheel.split(".")
    return f"Vehicle.Chassis.Axle.{row}.Wheel.{side}.Brake.PadWear"


def ms(seconds: float) -> int:
    return T0_MS + round(seconds * 1000)


def at(seconds: float, signals: Mapping[str, SignalValue], vin: str = VIN) -> Sample:
    """A sample ``seconds`` after T0."""
    return Sample(vin, ms(seconds), signals)


def series(
    start_s: float,
    step_s: float,
    name: str,
    values: Iterable[float],
    fixed: Mapping[str, SignalValue] | None = None,
) -> list[Sample]:
    """Samples ``step_s`` apart from ``start_s``, signal ``name`` taking ``values`` in turn;
    ``fixed`` adds signals that stay constant."""
    return [
        at(start_s + i * step_s, {name: value, **(fixed or {})}) for i, value in enumerate(values)
    ]


def dtc(seconds: float, code: str, active: bool, vin: str = VIN) -> DtcEvent:
    return DtcEvent(vin, ms(seconds), code, active)


def run(
    rules: StreamRules, samples: Iterable[Sample] = (), dtcs: Iterable[DtcEvent] = ()
) -> RuleOutcome:
    return rules.evaluate(list(samples), list(dtcs))


def of_type(items: Iterable[Finding], type_: AlertType) -> list[Finding]:
    return [f for f in items if f.type is type_]


def cleared(items: Iterable[Clearance], type_: AlertType) -> list[Clearance]:
    return [c for c in items if c.type is type_]


def seconds_of(item: Finding | Clearance) -> float:
    """``observed_at`` as seconds after T0."""
    return round(item.observed_at.timestamp() * 1000 - T0_MS) / 1000


def number(finding: Finding, key: str) -> float:
    """A numeric evidence value (fails the test if it is missing or not a number)."""
    value = finding.evidence[key]
    assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
    return float(value)
