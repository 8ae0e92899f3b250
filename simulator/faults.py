"""Fault plans: which simulated car gets which component fault, when it starts and how fast.

A plan is data (:class:`FaultSpec`), chosen by seed (:func:`plan_faults`) or read from a JSON
lines file (:func:`load_fault_plan`), so that a run's faults are reproducible and a test bench
can script exactly the faults it wants. The physics of each fault lives in
:mod:`simulator.wear`; the failure thresholds and the signals they apply to are in
:data:`FAILURE_THRESHOLDS` here, because the plan's rates are chosen against them.
See ``docs/simulator-faults.md`` for the models, units and ranges.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from protocol.catalogue import Powertrain
from simulator.fleet import VehicleProfile

MS_PER_DAY = 86_400_000
WHEELS = ("Row1.Left", "Row1.Right", "Row2.Left", "Row2.Right")
DEFAULT_FAULT_SHARE = 0.30
#: Typical daily distance the plan assumes to turn a km-based rate into a time to failure.
PLANNING_KM_PER_DAY = 35.0


class FaultKind(StrEnum):
    """A component fault; the value is the diagnostics alert type it should trigger."""

    TIRE_SLOW_LEAK = "tire_slow_leak"
    LOW_VOLTAGE_BATTERY_DEGRADATION = "low_voltage_battery_degradation"
    BRAKE_PAD_WEAR = "brake_pad_wear"  # abnormally fast wear (e.g. sticking caliper)
    COOLANT_OVERHEATING = "coolant_overheating"  # failing thermostat or pump
    TRACTION_BATTERY_DEGRADATION = "traction_battery_degradation"


@dataclass(frozen=True, slots=True)
class FailureThreshold:
    """When a fault's component counts as failed: ``signal`` crosses ``value``."""

    signal: str  # VSS path; ``{wheel}`` is replaced by the component, e.g. Row1.Wheel.Left
    value: float
    below: bool  # True: failed when the value falls below the threshold
    #: The usual distance from a healthy car's value to the threshold, in the fault's state
    #: unit; the default plan divides it by a time to failure to get a rate.
    typical_margin: float
    rate_unit: str


_AXLE = "Vehicle.Chassis.Axle.{row}.Wheel.{side}"
FAILURE_THRESHOLDS: dict[FaultKind, FailureThreshold] = {
    # TPMS warning: 25 % below a ~240 kPa placard pressure (UN R141 / FMVSS 138), compared at
    # the 15 C reference temperature so that a cold morning alone is not a failure.
    FaultKind.TIRE_SLOW_LEAK: FailureThreshold(
        f"{_AXLE}.Tire.Pressure", 180.0, True, 60.0, "kPa/day"
    ),
    # Resting (open-circuit) voltage of 12.0 V is ~25 % state of charge for a lead-acid battery
    # (BCI); a battery that rests there after a normal day's drive no longer holds a charge.
    FaultKind.LOW_VOLTAGE_BATTERY_DEGRADATION: FailureThreshold(
        "Vehicle.LowVoltageBattery.CurrentVoltage", 12.0, True, 0.6, "V/day"
    ),
    # Wear sensors trip at ~2-3 mm of pad left, i.e. ~90 % worn.
    FaultKind.BRAKE_PAD_WEAR: FailureThreshold(
        f"{_AXLE}.Brake.PadWear", 90.0, False, 50.0, "%/1000 km"
    ),
    # P0217 engine overheat: coolant above ~115 C at load.
    FaultKind.COOLANT_OVERHEATING: FailureThreshold(
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
        115.0,
        False,
        22.0,
        "C/day (rise of the coolant peak at load)",
    ),
    # 70 % state of health: the usual end of life in traction battery warranties.
    FaultKind.TRACTION_BATTERY_DEGRADATION: FailureThreshold(
        "Vehicle.Powertrain.TractionBattery.StateOfHealth", 70.0, True, 20.0, "%/day"
    ),
}


class FaultPlanError(ValueError):
    """A fault plan (file or spec) that cannot be used."""

    code = "fault_plan_invalid"

    def __init__(self, message: str, *, line: int | None = None, value: object = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line
        self.value = value


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault of one car. ``rate`` is in the kind's unit per day (``rate_unit`` of its
    :class:`FailureThreshold`; brake pads per 1000 km). ``component`` names the wheel
    ("Row1.Left") for tyre and pad faults and is "" for unique components."""

    vin: str
    kind: FaultKind
    onset_ms: int
    rate: float
    component: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FaultKind):
            raise FaultPlanError(f"unknown fault kind {self.kind!r}", value=self.kind)
        if not self.rate > 0.0 or self.rate != self.rate or self.rate == float("inf"):
            raise FaultPlanError(f"rate must be positive and finite, not {self.rate}")
        if self.onset_ms < 0:
            raise FaultPlanError(f"onset_ms must not be negative: {self.onset_ms}")
        per_wheel = self.kind in (FaultKind.TIRE_SLOW_LEAK, FaultKind.BRAKE_PAD_WEAR)
        if per_wheel and self.component not in WHEELS:
            raise FaultPlanError(f"{self.kind} needs a wheel in {WHEELS}", value=self.component)
        if not per_wheel and self.component:
            raise FaultPlanError(f"{self.kind} takes no component", value=self.component)

    @property
    def threshold(self) -> FailureThreshold:
        return FAILURE_THRESHOLDS[self.kind]

    @property
    def signal(self) -> str:
        """The VSS signal the failure threshold applies to, for this component."""
        if not self.component:
            return self.threshold.signal
        row, side = self.component.split(".")
        return self.threshold.signal.format(row=row, side=side)


def kinds_for(powertrain: Powertrain) -> tuple[FaultKind, ...]:
    """The fault kinds a car of ``powertrain`` can have (no coolant without an engine...)."""
    kinds = [FaultKind.TIRE_SLOW_LEAK, FaultKind.LOW_VOLTAGE_BATTERY_DEGRADATION]
    kinds.append(FaultKind.BRAKE_PAD_WEAR)
    if powertrain is not Powertrain.BEV:
        kinds.append(FaultKind.COOLANT_OVERHEATING)
    if powertrain is not Powertrain.ICE:
        kinds.append(FaultKind.TRACTION_BATTERY_DEGRADATION)
    return tuple(kinds)


PRESETS = ("none", "default")


def plan_faults(
    profiles: Sequence[VehicleProfile],
    *,
    seed: int,
    start_ms: int,
    days: float,
    preset: str = "default",
) -> list[FaultSpec]:
    """Faults for a fleet. ``default``: about 30 % of the cars get one fault of a kind their
    powertrain has; onsets fall in the first 40 % of the window and rates are drawn so that
    roughly four in five cross their failure threshold inside the window, the rest after it.

    Each car's draw depends only on (seed, VIN), so growing a fleet keeps the earlier cars'
    faults.
    """
    if preset not in PRESETS:
        raise FaultPlanError(f"unknown fault preset {preset!r}; known: {PRESETS}", value=preset)
    if not days > 0.0:
        raise FaultPlanError(f"days must be positive, not {days}", value=days)
    if preset == "none":
        return []
    plan: list[FaultSpec] = []
    window_ms = days * MS_PER_DAY
    for profile in profiles:
        rng = random.Random(f"faults:{seed}:{profile.vin}")
        if rng.random() >= DEFAULT_FAULT_SHARE:
            continue
        kind = rng.choice(kinds_for(profile.powertrain))
        component = ""
        if kind is FaultKind.TIRE_SLOW_LEAK:
            component = rng.choice(WHEELS)
        elif kind is FaultKind.BRAKE_PAD_WEAR:
            # A sticking caliper is more often a front one (higher clamping loads, more heat).
            component = rng.choice(("Row1.Left", "Row1.Right", "Row1.Left", "Row2.Right"))
        onset_ms = start_ms + round(rng.uniform(0.0, 0.4) * window_ms)
        remaining_days = (start_ms + window_ms - onset_ms) / MS_PER_DAY
        days_to_fail = rng.uniform(0.25, 1.25) * remaining_days
        rate = FAILURE_THRESHOLDS[kind].typical_margin / max(days_to_fail, 0.5)
        if kind is FaultKind.BRAKE_PAD_WEAR:
            rate *= 1000.0 / PLANNING_KM_PER_DAY  # per day -> per 1000 km
        plan.append(FaultSpec(str(profile.vin), kind, onset_ms, round(rate, 4), component))
    return plan


def dump_fault_plan(plan: Sequence[FaultSpec], path: Path) -> None:
    """Write ``plan`` as JSON lines (one :class:`FaultSpec` per line, its field names)."""
    with path.open("w", encoding="utf-8") as out:
        for spec in plan:
            out.write(json.dumps(asdict(spec), separators=(",", ":")) + "\n")


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "vin": str,
    "kind": str,
    "onset_ms": int,
    "rate": (int, float),
    "component": str,
}


def parse_fault_line(text: str, line: int) -> FaultSpec:
    """One JSON line of a plan file -> :class:`FaultSpec`; :class:`FaultPlanError` if bad."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FaultPlanError(f"not JSON: {exc.msg}", line=line, value=text) from exc
    if not isinstance(raw, dict):
        raise FaultPlanError("expected a JSON object", line=line, value=raw)
    raw.setdefault("component", "")
    if set(raw) != set(_FIELDS):
        raise FaultPlanError(f"fields must be {sorted(_FIELDS)}", line=line, value=sorted(raw))
    for name, expected in _FIELDS.items():
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise FaultPlanError(f"{name} has the wrong type", line=line, value=value)
    try:
        kind = FaultKind(raw["kind"])
        return FaultSpec(raw["vin"], kind, raw["onset_ms"], float(raw["rate"]), raw["component"])
    except FaultPlanError as exc:
        raise FaultPlanError(str(exc), line=line, value=exc.value) from exc
    except ValueError as exc:  # FaultKind(...) of an unknown kind
        raise FaultPlanError(str(exc), line=line, value=raw["kind"]) from exc


def load_fault_plan(path: Path) -> list[FaultSpec]:
    """Read a plan written by :func:`dump_fault_plan` (or by hand); blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FaultPlanError(f"cannot read {path}: {exc}", value=str(path)) from exc
    return [
        parse_fault_line(line, number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
