"""Injected faults produce the ground truth they claim; healthy cars show no trend.

The cars are simulated for days: parked time is skipped to the routine's next departure
(``VehicleModel.next_departure_ms``) and driving is stepped at 5 s, as a backfill would.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from protocol.catalogue import Powertrain
from protocol.messages import EventType
from simulator.faults import MS_PER_DAY, FaultKind, FaultSpec
from simulator.fleet import VehicleProfile, build_fleet
from simulator.ground_truth import GroundTruthRecord
from simulator.signal_readout import ATMOSPHERE_KPA, TIRE_REFERENCE_C
from simulator.vehicle_model import Phase, VehicleModel

START_MS = 1_763_965_800_000  # Monday 2025-11-24, 07:30 local
FLEET = build_fleet(120, seed=42)
Signals = dict[str, bool | int | float | str]

AXLE = "Vehicle.Chassis.Axle.Row1.Wheel.Left"
LV = "Vehicle.LowVoltageBattery.CurrentVoltage"
SOH = "Vehicle.Powertrain.TractionBattery.StateOfHealth"
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"


def profile(powertrain: Powertrain, index: int = 0) -> VehicleProfile:
    return [p for p in FLEET if p.powertrain is powertrain][index]


@dataclass(frozen=True, slots=True)
class Tick:
    ts_ms: int
    departing: bool  # parked, about to leave: a "cold" reading if it was parked long
    parked_ms: int  # how long the car has been parked (0 while driving)
    driving: bool
    signals: Signals


def run(model: VehicleModel, days: float, step_ms: int = 5000) -> Iterator[Tick]:
    end = model.now_ms + round(days * MS_PER_DAY)
    t = last_drive_ms = model.now_ms
    while t < end:
        departure = model.next_departure_ms
        departing = model.phase is Phase.PARKED and departure is not None and departure > t
        t = min(departure, end) if departing and departure is not None else t + step_ms
        model.step(t)
        driving = model.phase is Phase.DRIVING
        if driving:
            last_drive_ms = t
        yield Tick(t, departing, t - last_drive_ms, driving, model.read_signals())


def cold_pressure(signals: Signals, wheel: str = AXLE) -> float:
    """Reported pressure brought back to the 15 C reference with the reported tyre temperature."""
    p = float(signals[f"{wheel}.Tire.Pressure"]) + ATMOSPHERE_KPA
    t = float(signals[f"{wheel}.Tire.Temperature"]) + 273.15
    return p * (TIRE_REFERENCE_C + 273.15) / t - ATMOSPHERE_KPA


def rested(tick: Tick) -> bool:
    """A 12 V reading after the surface charge has gone: parked for six hours or more."""
    return tick.departing and tick.parked_ms >= 6 * 3_600_000


def truth(model: VehicleModel) -> dict[str, GroundTruthRecord]:
    return {r.event: r for r in model.drain_ground_truth()}


def dtcs(model: VehicleModel) -> list[tuple[str | None, bool | None, int]]:
    return [(e.code, e.active, e.ts_ms) for e in model.drain_events() if e.type is EventType.DTC]


# ---------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kind", "powertrain", "rate", "component"),
    [
        (FaultKind.TIRE_SLOW_LEAK, Powertrain.ICE, 8.0, "Row1.Left"),
        (FaultKind.LOW_VOLTAGE_BATTERY_DEGRADATION, Powertrain.ICE, 0.12, ""),
        (FaultKind.TRACTION_BATTERY_DEGRADATION, Powertrain.BEV, 3.0, ""),
    ],
)
def test_time_linear_faults_fail_exactly_when_projected(
    kind: FaultKind, powertrain: Powertrain, rate: float, component: str
) -> None:
    car = profile(powertrain)
    onset = START_MS + MS_PER_DAY + 12_345
    spec = FaultSpec(str(car.vin), kind, onset, rate, component)
    other = FaultSpec("WVWZZZCDZLW000001", kind, START_MS, 100.0, component)  # not this car
    model = VehicleModel(car, random.Random(1), START_MS, faults=[spec, other])
    ticks = list(run(model, 12))
    records = truth(model)
    assert set(records) == {"onset", "failure"}
    assert records["onset"].ts_ms == onset
    assert records["onset"].vin == str(car.vin) and records["onset"].fault == kind.value
    expected = records["onset"].expected_failure_ms
    assert expected is not None and onset < expected < START_MS + 12 * MS_PER_DAY
    # Constant rates: the projection at onset is the crossing, to the millisecond.
    assert abs(records["failure"].ts_ms - expected) <= 2
    failure_ms = records["failure"].ts_ms
    codes = dtcs(model)
    assert len(codes) == 1 and codes[0][1] is True and codes[0][2] == failure_ms
    # The signals agree: healthy well before, failed well after (wire rounding aside).
    threshold = records["failure"].threshold
    if kind is FaultKind.TIRE_SLOW_LEAK:
        values = [(t.ts_ms, cold_pressure(t.signals)) for t in ticks]
        margin = 1.5
    elif kind is FaultKind.TRACTION_BATTERY_DEGRADATION:
        values = [(t.ts_ms, float(t.signals[SOH])) for t in ticks]
        margin = 0.1
    else:  # resting voltage: cars parked overnight, read before they leave
        values = [(t.ts_ms, float(t.signals[LV])) for t in ticks if rested(t)]
        margin = 0.03
    assert all(v > threshold - margin for ts, v in values if ts < failure_ms - 3_600_000)
    assert all(v < threshold + margin for ts, v in values if ts > failure_ms + 3_600_000)
    assert any(v < threshold for ts, v in values)


def test_degraded_12v_battery_dips_deeper_when_cranking() -> None:
    car = profile(Powertrain.ICE, 1)
    healthy = VehicleModel(car, random.Random(3), START_MS)
    spec = FaultSpec(str(car.vin), FaultKind.LOW_VOLTAGE_BATTERY_DEGRADATION, START_MS, 0.2)
    worn = VehicleModel(car, random.Random(3), START_MS, faults=[spec])

    def crank_dips(model: VehicleModel) -> list[float]:
        dips, was_driving = [], model.phase is Phase.DRIVING
        for tick in run(model, 4, step_ms=1000):
            if tick.driving and not was_driving:
                dips.append(float(tick.signals[LV]))
            was_driving = tick.driving
        return dips

    healthy_dips, worn_dips = crank_dips(healthy), crank_dips(worn)
    assert healthy_dips and all(9.6 < v < 12.0 for v in healthy_dips)
    assert worn_dips[-1] < 9.6 < healthy_dips[-1]


def test_sticking_caliper_wears_one_pad_to_the_sensor() -> None:
    car = profile(Powertrain.ICE, 2)
    spec = FaultSpec(str(car.vin), FaultKind.BRAKE_PAD_WEAR, START_MS + 3_600_000, 300.0,
                     "Row1.Left")  # fmt: skip
    model = VehicleModel(car, random.Random(4), START_MS, faults=[spec])
    ticks = list(run(model, 10))
    records = truth(model)
    failure_ms = records["failure"].ts_ms
    pad = f"{AXLE}.Brake.PadWear"
    # The record comes at most one wear tick (60 s of model time) after the pad reached 90 %.
    before = [int(t.signals[pad]) for t in ticks if t.ts_ms < failure_ms - 60_000]
    after = [int(t.signals[pad]) for t in ticks if t.ts_ms >= failure_ms]
    assert max(before) <= 90 and min(after) >= 90
    right = [int(t.signals["Vehicle.Chassis.Axle.Row1.Wheel.Right.Brake.PadWear"]) for t in ticks]
    assert right[-1] - right[0] <= 3  # the healthy side wears normally
    assert [c[0] for c in dtcs(model)] == ["C1160"]


def test_failing_thermostat_overheats_at_load_and_sets_and_clears_p0217() -> None:
    car = profile(Powertrain.ICE, 3)
    spec = FaultSpec(str(car.vin), FaultKind.COOLANT_OVERHEATING, START_MS, 6.0)
    model = VehicleModel(car, random.Random(5), START_MS, faults=[spec])
    ticks = list(run(model, 8))
    records = truth(model)
    failure_ms = records["failure"].ts_ms
    hot = [t for t in ticks if float(t.signals[COOLANT]) >= 115.0]
    assert hot and abs(hot[0].ts_ms - failure_ms) <= 5000  # the signal crossed right there
    assert all(float(t.signals[COOLANT]) < 115.0 for t in ticks if t.ts_ms < failure_ms)
    codes = dtcs(model)
    assert codes[0][:2] == ("P0217", True) and codes[0][2] == failure_ms
    assert ("P0217", False) in [c[:2] for c in codes]  # cleared once the engine cooled


# ---------------------------------------------------------------------------- healthy fleet


def slope_per_day(points: list[tuple[int, float]]) -> float:
    xs = [ts / MS_PER_DAY for ts, _ in points]
    ys = [v for _, v in points]
    return statistics.linear_regression(xs, ys).slope


@pytest.mark.parametrize(
    ("powertrain", "index"),
    [(Powertrain.ICE, 0), (Powertrain.BEV, 0), (Powertrain.PHEV, 0), (Powertrain.HEV, 0)],
)
def test_healthy_cars_show_no_trend_over_thirty_days(powertrain: Powertrain, index: int) -> None:
    model = VehicleModel(profile(powertrain, index), random.Random(11), START_MS)
    cold, rest, soh, peaks, pads = [], [], [], [], []
    peak, day = 0.0, START_MS // MS_PER_DAY
    for tick in run(model, 30, step_ms=10_000):
        s = tick.signals
        if tick.departing:
            cold.append((tick.ts_ms, cold_pressure(s)))
            if rested(tick):
                rest.append((tick.ts_ms, float(s[LV])))
            pads.append((float(s["Vehicle.TraveledDistance"]), float(s[f"{AXLE}.Brake.PadWear"])))
        if SOH in s:
            soh.append((tick.ts_ms, float(s[SOH])))
        # Coolant at load: warm engine, high revs (what a thermostat fault shows first).
        rpm = s.get("Vehicle.Powertrain.CombustionEngine.Speed", 0)
        if isinstance(rpm, int) and rpm >= 2000 and float(s[COOLANT]) >= 70.0:
            peak = max(peak, float(s[COOLANT]))
        if tick.ts_ms // MS_PER_DAY != day:
            if peak > 0.0:
                peaks.append((tick.ts_ms, peak))
            peak, day = 0.0, tick.ts_ms // MS_PER_DAY
    assert model.drain_ground_truth() == []
    assert not [e for e in model.drain_events() if e.type is EventType.DTC]
    assert len(cold) >= 20
    # Bounds are an order of magnitude below the slowest injected fault of the default plan.
    assert abs(slope_per_day(cold)) < 0.3  # kPa/day; a slow leak is >= 2
    assert abs(slope_per_day(rest)) < 0.005  # V/day; a failing battery is >= 0.02
    if soh:
        assert -0.02 < slope_per_day(soh) <= 0.0  # %/day; a failing pack is >= 0.5
    if len(peaks) >= 10:
        assert abs(slope_per_day(peaks)) < 0.3  # C/day; a failing thermostat is >= 0.7
    km = pads[-1][0] - pads[0][0]
    assert km > 200.0
    assert (pads[-1][1] - pads[0][1]) / km * 1000.0 < 10.0  # %/1000 km; a sticking caliper >= 20
