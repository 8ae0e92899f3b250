"""What the diagnostic engines conclude about one vehicle: a :class:`Finding`.

Both engines (stream rules on each ingested batch, trend models over days) produce findings;
the alert lifecycle (``diagnostics.lifecycle``) turns them into alerts: one open alert per
vehicle, type and component, opened, updated as the prediction moves, and resolved when the
evidence goes away. A finding is a plain value: no I/O, no database ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class AlertType(StrEnum):
    # Gradual faults: the names equal the simulator's fault kinds (docs/simulator-faults.md),
    # so alerts can be scored against its ground truth.
    TIRE_SLOW_LEAK = "tire_slow_leak"
    LOW_VOLTAGE_BATTERY_DEGRADATION = "low_voltage_battery_degradation"
    BRAKE_PAD_WEAR = "brake_pad_wear"
    COOLANT_OVERHEATING = "coolant_overheating"
    TRACTION_BATTERY_DEGRADATION = "traction_battery_degradation"
    # Immediate conditions.
    TIRE_PRESSURE_LOSS = "tire_pressure_loss"  # sudden loss: a puncture, not a slow leak
    DTC = "dtc"
    SERVICE_DUE = "service_due"


GRADUAL_TYPES: frozenset[AlertType] = frozenset(
    {
        AlertType.TIRE_SLOW_LEAK,
        AlertType.LOW_VOLTAGE_BATTERY_DEGRADATION,
        AlertType.BRAKE_PAD_WEAR,
        AlertType.COOLANT_OVERHEATING,
        AlertType.TRACTION_BATTERY_DEGRADATION,
    }
)


class Severity(StrEnum):
    """How soon the owner must act: ``info`` (plan it), ``warning`` (book soon),
    ``critical`` (stop or act now)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_RANK: dict[Severity, int] = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

Evidence = dict[str, float | int | str | bool | None]


@dataclass(frozen=True, slots=True)
class Finding:
    """One engine's current conclusion about ``(vin, type, component)``.

    ``component`` names the part for per-wheel faults (``Row1.Left``) or the DTC code for
    ``dtc`` findings; ``""`` otherwise. ``observed_at`` is the time of the newest data behind
    the finding (sample time, not wall time). ``predicted_failure_at`` is when the trend
    crosses the failure threshold (None: no prediction, e.g. a DTC or already failed).
    ``confidence`` is in [0, 1]. ``evidence`` holds the numbers behind it (JSON scalars).
    """

    vin: str
    type: AlertType
    component: str
    severity: Severity
    observed_at: datetime
    recommended_action: str
    confidence: float = 1.0
    predicted_failure_at: datetime | None = None
    evidence: Evidence = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, AlertType, str]:
        return (self.vin, self.type, self.component)


@dataclass(frozen=True, slots=True)
class Clearance:
    """An engine's statement that ``(vin, type, component)`` is healthy again at
    ``observed_at`` (e.g. a refill brought the tyre pressure back, a DTC was cleared): the open
    alert for that key resolves. Engines emit clearances only for keys they evaluated."""

    vin: str
    type: AlertType
    component: str
    observed_at: datetime
    reason: str

    @property
    def key(self) -> tuple[str, AlertType, str]:
        return (self.vin, self.type, self.component)
