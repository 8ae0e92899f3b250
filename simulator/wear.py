"""Slow wear and injected faults: what changes a car's components over days, not seconds.

:class:`WearModel` is advanced by the vehicle model every minute or so of model time (and at the
end of every step that crossed a fault's onset). It applies the normal slow wear of a healthy
car (tyre permeation, calendar fade of the traction battery) and each planned
:class:`~simulator.faults.FaultSpec` from its onset on, records the ground truth (onset with a
projected failure time, then the moment the component crosses its failure threshold) and sets
and clears the matching DTCs. Brake pads wear by braking energy in :mod:`simulator.energy`; a
sticking caliper adds wear per km here. Coolant overheating raises the thermostat's target in
:mod:`simulator.thermal` through ``Engine.overheat_c`` and is checked every driving sub-step
(:meth:`WearModel.check_coolant`) because the coolant temperature moves in seconds.

Time-linear faults (tyre leak, 12 V battery, traction battery) cross their threshold at a time
computed exactly by linear interpolation inside the interval, so the ground truth does not
depend on how coarsely the car is stepped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simulator.components import CarComponents, Wheel
from simulator.dtc import clear_code, dtc_for
from simulator.faults import MS_PER_DAY, PLANNING_KM_PER_DAY, WHEELS, FaultKind, FaultSpec
from simulator.ground_truth import GroundTruthRecord

#: Healthy tyres lose ~1 psi (7 kPa) a month through the rubber; 0.1 kPa/day is the low end
#: (owners top up now and then, which the simulator does not model).
TIRE_PERMEATION_KPA_PER_DAY = 0.1
#: Calendar ageing of a lithium-ion pack at moderate temperature: ~1.8 %/year.
SOH_CALENDAR_PCT_PER_DAY = 0.005
LV_REST_FULL_V = 12.65  # resting voltage of a healthy, fully charged lead-acid battery
COOLANT_PEAK_HEALTHY_C = 93.0  # thermostat target at full load, see simulator.thermal
COOLANT_CLEAR_C = 105.0  # P0217 clears once the coolant is back below this
#: Nominal front-pad wear per 1000 km of urban driving on friction brakes (see energy.py).
NORMAL_PAD_PCT_PER_1000_KM = 2.0


@dataclass(slots=True)
class _Fault:
    spec: FaultSpec
    wheel: Wheel | None
    started: bool = False
    failed: bool = False
    dtc_active: bool = False


class WearModel:
    """Normal wear plus the planned faults of one car."""

    def __init__(self, faults: Sequence[FaultSpec], car: CarComponents) -> None:
        self._faults = [
            _Fault(f, car.wheels[WHEELS.index(f.component)] if f.component else None)
            for f in faults
        ]
        self.records: list[GroundTruthRecord] = []  # bounded: two per fault at most
        self.dtcs: list[tuple[int, str, bool]] = []  # (ts_ms, code, active), drained by caller
        self.overheat_fault = any(
            f.spec.kind is FaultKind.COOLANT_OVERHEATING for f in self._faults
        )

    @property
    def next_onset_ms(self) -> int | None:
        pending = [f.spec.onset_ms for f in self._faults if not f.started]
        return min(pending) if pending else None

    # ----------------------------------------------------------------- slow update

    def advance(self, car: CarComponents, t0_ms: int, t1_ms: int, driven_km: float) -> None:
        """Apply wear and faults over [t0_ms, t1_ms], in which the car drove ``driven_km``."""
        onsets = [
            f.spec.onset_ms
            for f in self._faults
            if not f.started and t0_ms < f.spec.onset_ms < t1_ms
        ]
        if onsets:
            # Split at the onset, so that its projection sees the state at the onset itself.
            onset = min(onsets)
            share = (onset - t0_ms) / (t1_ms - t0_ms)
            self.advance(car, t0_ms, onset, driven_km * share)
            self.advance(car, onset, t1_ms, driven_km * (1.0 - share))
            return
        days = (t1_ms - t0_ms) / MS_PER_DAY
        if days <= 0.0 and driven_km <= 0.0:
            return
        for wheel in car.wheels:
            wheel.cold_kpa -= TIRE_PERMEATION_KPA_PER_DAY * days
        battery = car.battery
        if battery is not None:
            battery.soh_pct -= SOH_CALENDAR_PCT_PER_DAY * days
        for fault in self._faults:
            spec = fault.spec
            if t1_ms < spec.onset_ms:
                continue
            if not fault.started:
                fault.started = True
                self._record(fault, "onset", spec.onset_ms, self._projection(fault, car))
            active_from = max(t0_ms, spec.onset_ms)
            active_days = (t1_ms - active_from) / MS_PER_DAY
            share = (t1_ms - active_from) / (t1_ms - t0_ms) if t1_ms > t0_ms else 1.0
            self._apply(fault, car, (active_from, t1_ms), active_days, driven_km * share)

    def _apply(
        self,
        fault: _Fault,
        car: CarComponents,
        span_ms: tuple[int, int],
        days: float,
        km: float,
    ) -> None:
        spec, kind = fault.spec, fault.spec.kind
        t0_ms, t1_ms = span_ms
        threshold = spec.threshold.value
        if kind is FaultKind.TIRE_SLOW_LEAK:
            assert fault.wheel is not None
            before = fault.wheel.cold_kpa + TIRE_PERMEATION_KPA_PER_DAY * days
            fault.wheel.cold_kpa -= spec.rate * days
            self._linear_failure(fault, before, fault.wheel.cold_kpa, t0_ms, t1_ms)
        elif kind is FaultKind.LOW_VOLTAGE_BATTERY_DEGRADATION:
            lv = car.lv_battery
            before = LV_REST_FULL_V - lv.wear_v
            lv.wear_v += spec.rate * days
            self._linear_failure(fault, before, LV_REST_FULL_V - lv.wear_v, t0_ms, t1_ms)
        elif kind is FaultKind.TRACTION_BATTERY_DEGRADATION:
            battery = car.battery
            assert battery is not None
            before = battery.soh_pct + SOH_CALENDAR_PCT_PER_DAY * days
            battery.soh_pct = max(0.0, battery.soh_pct - spec.rate * days)
            self._linear_failure(fault, before, battery.soh_pct, t0_ms, t1_ms)
        elif kind is FaultKind.BRAKE_PAD_WEAR:
            assert fault.wheel is not None
            wheel = fault.wheel
            wheel.pad_wear_pct = min(100.0, wheel.pad_wear_pct + spec.rate * km / 1000.0)
            if not fault.failed and wheel.pad_wear_pct >= threshold:
                self._fail(fault, t1_ms)
        elif kind is FaultKind.COOLANT_OVERHEATING:
            engine = car.engine
            assert engine is not None
            engine.overheat_c += spec.rate * days

    def _linear_failure(
        self, fault: _Fault, before: float, after: float, t0_ms: int, t1_ms: int
    ) -> None:
        """Failure of a value falling linearly from ``before`` to ``after`` over [t0, t1]."""
        threshold = fault.spec.threshold.value
        if fault.failed or after >= threshold:
            return
        if before <= threshold or before == after:
            self._fail(fault, t0_ms)
            return
        share = (before - threshold) / (before - after)
        self._fail(fault, t0_ms + round((t1_ms - t0_ms) * share))

    # ----------------------------------------------------------------- fast checks

    def check_coolant(self, car: CarComponents, now_ms: int) -> None:
        """Overheat DTC and ground truth, against the coolant temperature right now."""
        engine = car.engine
        assert engine is not None
        coolant = engine.coolant_c
        for fault in self._faults:
            if fault.spec.kind is not FaultKind.COOLANT_OVERHEATING or not fault.started:
                continue
            if coolant >= fault.spec.threshold.value and not fault.dtc_active:
                if not fault.failed:
                    self._fail(fault, now_ms)
                else:
                    self._set_dtc(fault, now_ms, True)
            elif coolant < COOLANT_CLEAR_C and fault.dtc_active:
                self._set_dtc(fault, now_ms, False)

    # ----------------------------------------------------------------- records

    def _fail(self, fault: _Fault, ts_ms: int) -> None:
        fault.failed = True
        self._record(fault, "failure", ts_ms, None)
        self._set_dtc(fault, ts_ms, True)

    def _set_dtc(self, fault: _Fault, ts_ms: int, active: bool) -> None:
        fault.dtc_active = active
        code = dtc_for(fault.spec.kind, fault.spec.component)
        if active or clear_code(fault.spec.kind):
            self.dtcs.append((ts_ms, code, active))

    def _record(self, fault: _Fault, event: str, ts_ms: int, expected: int | None) -> None:
        spec = fault.spec
        self.records.append(
            GroundTruthRecord(
                vin=spec.vin,
                fault=spec.kind.value,
                component=spec.component,
                event=event,
                ts_ms=ts_ms,
                threshold=spec.threshold.value,
                signal=spec.signal,
                expected_failure_ms=expected,
            )
        )

    def _projection(self, fault: _Fault, car: CarComponents) -> int:
        """When the component should fail, projected at onset from its state then."""
        spec, kind = fault.spec, fault.spec.kind
        threshold = spec.threshold.value
        if kind is FaultKind.TIRE_SLOW_LEAK:
            assert fault.wheel is not None
            margin = fault.wheel.cold_kpa - threshold
            days = margin / (spec.rate + TIRE_PERMEATION_KPA_PER_DAY)
        elif kind is FaultKind.LOW_VOLTAGE_BATTERY_DEGRADATION:
            days = (LV_REST_FULL_V - car.lv_battery.wear_v - threshold) / spec.rate
        elif kind is FaultKind.TRACTION_BATTERY_DEGRADATION:
            assert car.battery is not None
            days = (car.battery.soh_pct - threshold) / (spec.rate + SOH_CALENDAR_PCT_PER_DAY)
        elif kind is FaultKind.BRAKE_PAD_WEAR:
            assert fault.wheel is not None
            per_1000 = spec.rate + NORMAL_PAD_PCT_PER_1000_KM
            km = (threshold - fault.wheel.pad_wear_pct) / per_1000 * 1000.0
            days = km / PLANNING_KM_PER_DAY
        else:
            assert car.engine is not None
            days = (threshold - COOLANT_PEAK_HEALTHY_C - car.engine.overheat_c) / spec.rate
        return spec.onset_ms + round(max(days, 0.0) * MS_PER_DAY)
