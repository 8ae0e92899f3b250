"""What every stream rule works on: the small per-vehicle state and the emitter of findings.

A rule is called once per sample of a vehicle, in time order, with that vehicle's
:class:`VehicleState`; it updates its own part of the state and tells the :class:`Emitter` when
a condition starts, materially changes or ends. The state of one vehicle is a few dozen numbers
whatever the sample rate: no rule keeps a history of samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from diagnostics.findings import AlertType, Clearance, Evidence, Finding, Severity
from diagnostics.rules.hysteresis import Condition
from diagnostics.stream_input import Sample, to_datetime

#: The four wheels of a two-axle car, as ``Finding.component`` names them (VSS Axle.RowN).
WHEELS: tuple[str, ...] = ("Row1.Left", "Row1.Right", "Row2.Left", "Row2.Right")
_WHEEL_WORDS = {
    "Row1.Left": "front left",
    "Row1.Right": "front right",
    "Row2.Left": "rear left",
    "Row2.Right": "rear right",
}


def wheel_signal(wheel: str, leaf: str) -> str:
    """VSS path of a wheel signal: ``("Row1.Left", "Tire.Pressure")`` ->
    ``Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure``."""
    row, side = wheel.split(".")
    return f"Vehicle.Chassis.Axle.{row}.Wheel.{side}.{leaf}"


def wheel_words(wheel: str) -> str:
    """How an owner names the wheel (``Row1.Left`` -> ``front left``)."""
    return _WHEEL_WORDS.get(wheel, wheel)


@dataclass(slots=True)
class PressureWindow:
    """Recent maxima of one tyre's cold pressure, one per minute: enough to see a loss within a
    window of minutes with at most ``window / 60 + 1`` numbers, whatever the sample rate."""

    minutes: list[tuple[int, float]] = field(default_factory=list)  # (minute index, max kPa)

    def add(self, ts_ms: int, kpa: float, window_ms: int) -> None:
        minute = ts_ms // 60_000
        if self.minutes and self.minutes[-1][0] == minute:
            self.minutes[-1] = (minute, max(self.minutes[-1][1], kpa))
        else:
            self.minutes.append((minute, kpa))
        oldest = (ts_ms - window_ms) // 60_000
        while self.minutes and self.minutes[0][0] < oldest:
            self.minutes.pop(0)

    def peak(self, ts_ms: int, window_ms: int) -> float | None:
        """Highest pressure seen in the window before ``ts_ms`` (minute resolution)."""
        oldest = (ts_ms - window_ms) // 60_000
        values = [kpa for minute, kpa in self.minutes if minute >= oldest]
        return max(values) if values else None


@dataclass(slots=True)
class DtcMemory:
    ts_ms: int
    active: bool


@dataclass(slots=True)
class VehicleState:
    """Everything the stream rules remember about one vehicle."""

    vin: str
    #: Newest sample time evaluated: a sample at or before it is a resend or arrived late.
    watermark_ms: int = -1
    #: Newest data time of any input (sample or DTC event), for idle eviction.
    last_seen_ms: int = -1
    # Last known activity (a sample may omit a signal: the last value still holds).
    moving: bool = False
    engine_running: bool = False
    charging: bool = False
    #: First sample of the current stretch parked with everything off (None: active).
    rest_since_ms: int | None = None
    conditions: dict[tuple[AlertType, str], Condition] = field(default_factory=dict)
    pressure: dict[str, PressureWindow] = field(default_factory=dict)
    #: Baseline (pre-loss cold pressure) of a pending or raised sudden loss, per wheel.
    loss_baseline: dict[str, float] = field(default_factory=dict)
    dtcs: dict[str, DtcMemory] = field(default_factory=dict)
    #: Open service_due severity (None: not due), and the last known service counters.
    service: Severity | None = None
    service_km: float | None = None
    service_s: float | None = None
    service_flag: bool | None = None

    def condition(self, type_: AlertType, component: str = "") -> Condition:
        key = (type_, component)
        found = self.conditions.get(key)
        if found is None:
            found = self.conditions[key] = Condition()
        return found


class Emitter:
    """Collects what the rules conclude, in the order they conclude it.

    A condition may end and begin again within one batch. The alert store applies a batch's
    findings before its clearances, which would leave such an alert resolved; so a finding
    withdraws an earlier clearance of its key in the same outcome (the alert stays open and is
    updated). A clearance after a finding is kept: findings-then-clearances is right for it.
    """

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.clearances: list[Clearance] = []

    def finding(
        self,
        vin: str,
        type_: AlertType,
        component: str,
        *,
        severity: Severity,
        ts_ms: int,
        action: str,
        evidence: Evidence,
    ) -> None:
        key = (vin, type_, component)
        if self.clearances:
            self.clearances = [c for c in self.clearances if c.key != key]
        self.findings.append(
            Finding(
                vin=vin,
                type=type_,
                component=component,
                severity=severity,
                observed_at=to_datetime(ts_ms),
                recommended_action=action,
                evidence=evidence,
            )
        )

    def clearance(
        self, vin: str, type_: AlertType, component: str, ts_ms: int, reason: str
    ) -> None:
        self.clearances.append(Clearance(vin, type_, component, to_datetime(ts_ms), reason))


class SampleRule(Protocol):
    """A rule family evaluated on every sample of a vehicle, in time order."""

    def evaluate(self, state: VehicleState, sample: Sample, out: Emitter) -> None: ...
