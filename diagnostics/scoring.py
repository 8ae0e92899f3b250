"""Scoring alerts against ground truth: precision, recall, lead time, false-alert rate.

Pure: the evaluation (``fleetlink eval diagnostics``) reads the simulator's ground truth and the
alerts table and passes plain values in.

Definitions, per gradual alert type T:

- A *fault* is one injected fault of kind T on one vehicle (and wheel, for per-wheel kinds),
  with its onset and, when it happened inside the run, its failure (threshold crossing).
- An alert of type T is *correct* when the same vehicle has a fault of kind T on the same
  component (either side may leave the component empty) whose onset is at or before the
  alert's ``detected_at``; otherwise it is a *false alert*.
- *Precision* = correct alerts / alerts. *Recall* = faults that failed inside the run and had a
  correct alert detected at or before the failure / faults that failed inside the run.
- *Lead time* of a detected fault = failure - the first correct alert's ``detected_at``, in days;
  the median and the 10th percentile are over the detected faults.
- *False alerts per 1,000 vehicle-days* = false alerts of all gradual types x 1000 /
  (vehicles x days).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class TruthFault:
    vin: str
    type: str
    component: str
    onset: datetime
    failure: datetime | None  # None: did not fail inside the run


@dataclass(frozen=True, slots=True)
class ScoredAlert:
    id: int
    vin: str
    type: str
    component: str
    detected_at: datetime


@dataclass
class TypeScore:
    type: str
    faults: int = 0
    failed: int = 0
    alerts: int = 0
    correct_alerts: int = 0
    detected: int = 0  # failed faults alerted at or before failure
    lead_days: list[float] = field(default_factory=list)
    false_alert_ids: list[int] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)  # "vin component" of undetected failures

    @property
    def false_alerts(self) -> int:
        return self.alerts - self.correct_alerts

    @property
    def precision(self) -> float | None:
        return self.correct_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.failed if self.failed else None

    @property
    def median_lead_days(self) -> float | None:
        return float(np.median(self.lead_days)) if self.lead_days else None

    @property
    def p10_lead_days(self) -> float | None:
        return float(np.percentile(self.lead_days, 10)) if self.lead_days else None


@dataclass
class Scorecard:
    vehicles: int
    days: float
    types: list[TypeScore]

    @property
    def false_alerts(self) -> int:
        return sum(t.false_alerts for t in self.types)

    @property
    def false_per_1000_vehicle_days(self) -> float:
        return self.false_alerts * 1000 / (self.vehicles * self.days)


def _same_component(a: str, b: str) -> bool:
    return not a or not b or a == b


def score(
    faults: Iterable[TruthFault],
    alerts: Iterable[ScoredAlert],
    *,
    types: Sequence[str],
    vehicles: int,
    days: float,
) -> Scorecard:
    if vehicles <= 0 or days <= 0:
        raise ValueError("need vehicles > 0 and days > 0 to normalise the false-alert rate")
    by_type = {t: TypeScore(t) for t in types}
    truth: dict[tuple[str, str], list[TruthFault]] = {}
    for fault in faults:
        if fault.type in by_type:
            truth.setdefault((fault.vin, fault.type), []).append(fault)
            by_type[fault.type].faults += 1
            by_type[fault.type].failed += fault.failure is not None
    first_alert: dict[TruthFault, datetime] = {}
    for alert in sorted(alerts, key=lambda a: a.detected_at):
        result = by_type.get(alert.type)
        if result is None:
            continue
        result.alerts += 1
        matches = [
            f
            for f in truth.get((alert.vin, alert.type), ())
            if _same_component(f.component, alert.component) and f.onset <= alert.detected_at
        ]
        if not matches:
            result.false_alert_ids.append(alert.id)
            continue
        result.correct_alerts += 1
        for fault in matches:
            first_alert.setdefault(fault, alert.detected_at)
    for faults_of_vehicle in truth.values():
        for fault in faults_of_vehicle:
            if fault.failure is None:
                continue
            result = by_type[fault.type]
            first = first_alert.get(fault)
            if first is not None and first <= fault.failure:
                result.detected += 1
                result.lead_days.append((fault.failure - first).total_seconds() / DAY_S)
            else:
                result.missed.append(f"{fault.vin} {fault.component}".strip())
    return Scorecard(vehicles, days, list(by_type.values()))


def format_table(card: Scorecard) -> str:
    def fmt(value: float | None, pattern: str) -> str:
        return "-" if value is None else format(value, pattern)

    lines = [
        f"{'type':<34} {'faults':>6} {'failed':>6} {'alerts':>6} {'false':>5} "
        f"{'precision':>9} {'recall':>6} {'median lead d':>13} {'p10 lead d':>10}"
    ]
    for t in card.types:
        lines.append(
            f"{t.type:<34} {t.faults:>6} {t.failed:>6} {t.alerts:>6} {t.false_alerts:>5} "
            f"{fmt(t.precision, '.3f'):>9} {fmt(t.recall, '.3f'):>6} "
            f"{fmt(t.median_lead_days, '.1f'):>13} {fmt(t.p10_lead_days, '.1f'):>10}"
        )
    lines.append(
        f"false alerts: {card.false_alerts} over {card.vehicles} vehicles x {card.days:g} days = "
        f"{card.false_per_1000_vehicle_days:.3f} per 1,000 vehicle-days"
    )
    return "\n".join(lines)


def as_json(card: Scorecard) -> dict[str, object]:
    return {
        "vehicles": card.vehicles,
        "days": card.days,
        "false_alerts": card.false_alerts,
        "false_per_1000_vehicle_days": round(card.false_per_1000_vehicle_days, 4),
        "types": {
            t.type: {
                "faults": t.faults,
                "failed": t.failed,
                "alerts": t.alerts,
                "correct_alerts": t.correct_alerts,
                "false_alerts": t.false_alerts,
                "detected": t.detected,
                "precision": t.precision,
                "recall": t.recall,
                "median_lead_days": t.median_lead_days,
                "p10_lead_days": t.p10_lead_days,
                "missed": t.missed,
                "false_alert_ids": t.false_alert_ids,
            }
            for t in card.types
        },
    }
