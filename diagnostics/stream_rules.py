"""Stream rules: conditions judged on each ingested batch, as it arrives.

:class:`StreamRules` keeps a small state per vehicle (a few dozen numbers: no sample history)
and runs the rule families of :mod:`diagnostics.rules` over each vehicle's samples in time
order, and the DTC rule over its trouble-code events. It returns what changed: a
:class:`~diagnostics.findings.Finding` when a condition starts or its severity or evidence
materially changes, a :class:`~diagnostics.findings.Clearance` when it ends. Pure: no I/O, no
clock; sample times drive every duration.

Delivery: a batch may hold a vehicle's samples in any order and twice over; they are sorted and
samples with the same time merged. A sample at or before the newest one already evaluated for
its vehicle is a resend or arrived late: it is counted and skipped, because the rules judge the
present and the present has moved on (the trend models read history from the store). So
processing the same batch twice yields nothing new. All samples of one vehicle must go through
one instance (route by VIN).

State is bounded: :meth:`StreamRules.evict_idle` forgets vehicles without data for
``vehicle_idle_evict_s``, and at most ``max_vehicles`` are kept (least recently seen forgotten
first). A forgotten vehicle starts afresh; :meth:`StreamRules.restore_open` re-arms conditions
whose alerts are open (after a restart), so that they can still be cleared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from diagnostics.findings import AlertType, Clearance, Finding, Severity
from diagnostics.rule_settings import RuleSettings
from diagnostics.rules.base import DtcMemory, Emitter, SampleRule, VehicleState
from diagnostics.rules.brake_pads import BrakePadRule
from diagnostics.rules.coolant import CoolantRule
from diagnostics.rules.dtc import DtcRule
from diagnostics.rules.hysteresis import Condition
from diagnostics.rules.low_voltage import LowVoltageRule
from diagnostics.rules.service import ServiceRule
from diagnostics.rules.tires import TireRule
from diagnostics.rules.traction_battery import TractionBatteryRule
from diagnostics.stream_input import DtcEvent, Sample

OpenKey = tuple[str, AlertType, str]  # (vin, type, component) of an open alert


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What one batch changed. Safe to apply as "all findings, then all clearances": no
    clearance in it precedes a finding of the same key (see ``rules.base.Emitter``)."""

    findings: list[Finding]
    clearances: list[Clearance]

    def in_order(self) -> list[Finding | Clearance]:
        """Findings and clearances merged by ``observed_at``: the order to apply them in (a
        condition may start and end within one batch). At equal times a clearance comes
        first, matching the DTC rule's "a set wins a tie"."""
        merged: list[tuple[datetime, int, Finding | Clearance]] = [
            (c.observed_at, 0, c) for c in self.clearances
        ]
        merged += [(f.observed_at, 1, f) for f in self.findings]
        merged.sort(key=lambda item: (item[0], item[1]))
        return [item[2] for item in merged]


@dataclass(slots=True)
class RuleCounters:
    samples: int = 0  # evaluated
    late_samples: int = 0  # at or before the vehicle's newest evaluated sample (resends too)
    dtc_events: int = 0  # applied
    stale_dtc_events: int = 0  # older than, or a resend of, the code's last applied event
    evicted_vehicles: int = 0


class StreamRules:
    """See the module docstring. ``settings``: thresholds and durations (defaults if None)."""

    def __init__(self, settings: RuleSettings | None = None) -> None:
        self.settings = settings or RuleSettings()
        s = self.settings
        self._rules: tuple[SampleRule, ...] = (
            CoolantRule(s),
            TireRule(s),
            LowVoltageRule(s),
            TractionBatteryRule(s),
            BrakePadRule(s),
            ServiceRule(s),
        )
        self._dtc = DtcRule(s)
        # Insertion order is recency order: a vehicle is moved to the end when seen.
        self._vehicles: dict[str, VehicleState] = {}
        self._stream_time_ms: int | None = None
        self.counters = RuleCounters()

    @property
    def vehicles(self) -> int:
        """How many vehicles have state."""
        return len(self._vehicles)

    @property
    def stream_time_ms(self) -> int | None:
        """Newest data time seen (sample or event): the clock for eviction in a backfill."""
        return self._stream_time_ms

    def evaluate(self, samples: Sequence[Sample], dtcs: Sequence[DtcEvent] = ()) -> RuleOutcome:
        """Judge one batch; see the module docstring for ordering and resends."""
        out = Emitter()
        for vin, batch in _by_vehicle(samples).items():
            state = self._state(vin)
            for sample in _in_time_order(batch):
                if sample.ts_ms <= state.watermark_ms:
                    self.counters.late_samples += 1
                    continue
                state.watermark_ms = sample.ts_ms
                self._seen(state, sample.ts_ms)
                self.counters.samples += 1
                for rule in self._rules:
                    rule.evaluate(state, sample, out)
        for vin, events in _by_vehicle(dtcs).items():
            state = self._state(vin)
            # At equal times a set comes before a clear (the set wins the tie).
            for event in sorted(events, key=lambda e: (e.ts_ms, not e.active)):
                self._seen(state, event.ts_ms)
                if self._dtc.apply(state, event, out):
                    self.counters.dtc_events += 1
                else:
                    self.counters.stale_dtc_events += 1
        self._bound()
        return RuleOutcome(out.findings, out.clearances)

    def evict_idle(self, now_ms: int | None = None) -> list[str]:
        """Forget vehicles without data for ``vehicle_idle_evict_s`` before ``now_ms`` (the
        integrator's clock; default: :attr:`stream_time_ms`, right for a backfill, whose data
        is days old). Returns the VINs forgotten."""
        now = now_ms if now_ms is not None else self._stream_time_ms
        if now is None:
            return []
        cutoff = now - self.settings.vehicle_idle_evict_s * 1000
        idle = [vin for vin, state in self._vehicles.items() if state.last_seen_ms < cutoff]
        for vin in idle:
            del self._vehicles[vin]
        self.counters.evicted_vehicles += len(idle)
        return idle

    def restore_open(self, keys: Iterable[OpenKey], now_ms: int) -> None:
        """Re-arm the conditions of alerts that are open (e.g. after a restart), so that the
        rules clear them when the evidence goes away instead of forgetting them. ``now_ms``
        counts as the vehicles' last data time for eviction."""
        for vin, type_, component in keys:
            state = self._state(vin)
            state.last_seen_ms = max(state.last_seen_ms, now_ms)
            if type_ is AlertType.DTC:
                state.dtcs.setdefault(component, DtcMemory(-1, True))
            elif type_ is AlertType.SERVICE_DUE:
                state.service = state.service or Severity.INFO
            else:
                state.conditions.setdefault((type_, component), Condition(raised=True))
                if type_ is AlertType.TIRE_PRESSURE_LOSS:
                    # The pressure before the loss is not known any more: count the tyre as
                    # repaired once it is back at a healthy (non-leaking) cold pressure.
                    s = self.settings
                    baseline = s.tire_leak_clear_kpa + s.pressure_loss_clear_margin_kpa
                    state.loss_baseline.setdefault(component, baseline)
        self._bound()

    def _state(self, vin: str) -> VehicleState:
        state = self._vehicles.pop(vin, None)
        if state is None:
            state = VehicleState(vin)
        self._vehicles[vin] = state  # (re)inserted last: most recently seen
        return state

    def _seen(self, state: VehicleState, ts_ms: int) -> None:
        state.last_seen_ms = max(state.last_seen_ms, ts_ms)
        if self._stream_time_ms is None or ts_ms > self._stream_time_ms:
            self._stream_time_ms = ts_ms

    def _bound(self) -> None:
        excess = len(self._vehicles) - self.settings.max_vehicles
        if excess <= 0:
            return
        for vin in list(self._vehicles)[:excess]:  # least recently seen first
            del self._vehicles[vin]
        self.counters.evicted_vehicles += excess


_Item = TypeVar("_Item", Sample, DtcEvent)


def _by_vehicle(items: Sequence[_Item]) -> dict[str, list[_Item]]:
    grouped: dict[str, list[_Item]] = {}
    for item in items:
        grouped.setdefault(item.vin, []).append(item)
    return grouped


def _in_time_order(samples: list[Sample]) -> list[Sample]:
    """Sorted by time; samples with the same time (one sample, resent or split) merged."""
    ordered = sorted(samples, key=lambda s: s.ts_ms)
    merged: list[Sample] = []
    for sample in ordered:
        if merged and merged[-1].ts_ms == sample.ts_ms:
            last = merged[-1]
            merged[-1] = Sample(last.vin, last.ts_ms, {**last.signals, **sample.signals})
        else:
            merged.append(sample)
    return merged
