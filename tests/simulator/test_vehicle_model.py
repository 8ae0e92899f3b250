"""Invariants of the simulated car (simulator.vehicle_model)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.catalogue import FLOAT_TYPES, Datatype, Powertrain, get_signal, signals_for
from protocol.messages import EventType, Sample
from simulator.city import MUNICH, bearing_deg, haversine_km
from simulator.fleet import VehicleProfile, build_fleet
from simulator.vehicle_model import Phase, VehicleModel

START_MS = 1_763_892_000_000  # 2025-11-23 10:00 UTC (a Sunday)
WEEKDAY_MS = 1_763_965_800_000  # 2025-11-24 06:30 UTC, 07:30 local: rush hour
Signals = dict[str, bool | int | float | str]

LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
ODO = "Vehicle.TraveledDistance"
SPEED = "Vehicle.Speed"
FUEL = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
CH = "Vehicle.Powertrain.TractionBattery.Charging"


def _profiles() -> dict[Powertrain, list[VehicleProfile]]:
    fleet = build_fleet(200, seed=42)
    return {pt: [p for p in fleet if p.powertrain is pt][:5] for pt in Powertrain}


PROFILES = _profiles()


def profile_of(powertrain: Powertrain, index: int = 0) -> VehicleProfile:
    return PROFILES[powertrain][index]


def model_of(powertrain: Powertrain, seed: int = 0, index: int = 0) -> VehicleModel:
    return VehicleModel(profile_of(powertrain, index), random.Random(seed), START_MS)


def drive(model: VehicleModel, seconds: int, step_ms: int = 1000) -> Iterator[Signals]:
    """Step ``model`` at ``step_ms`` from its current time and yield the signals each step."""
    t = model.now_ms
    for _ in range(seconds * 1000 // step_ms):
        t += step_ms
        model.step(t)
        yield model.read_signals()


def drive_active(model: VehicleModel, seconds: int, step_ms: int = 1000) -> Iterator[Signals]:
    """Like :func:`drive`, but jumps over parked time to the routine's next departure, so that
    ``seconds`` (not counting the jumps) are mostly spent on the road."""
    t = model.now_ms
    left = seconds * 1000
    while left > 0:
        departure = model.next_departure_ms
        if model.phase is Phase.PARKED and departure is not None and departure - t > step_ms:
            t = departure
        else:
            t += step_ms
            left -= step_ms
        model.step(t)
        yield model.read_signals()


def assert_valid(signals: Signals, powertrain: Powertrain) -> None:
    assert set(signals) == {s.name for s in signals_for(powertrain)}
    for name, value in signals.items():
        spec = get_signal(name)
        assert spec is not None
        assert spec.check(value) is None, (name, value, spec.check(value))
        # Exact Python types: ints for VSS integers, bools for booleans.
        if spec.datatype is Datatype.BOOLEAN:
            assert type(value) is bool, name
        elif spec.datatype is Datatype.STRING:
            assert type(value) is str, name
        elif spec.datatype in FLOAT_TYPES:
            assert type(value) is float, name
        else:
            assert type(value) is int, name


# ---------------------------------------------------------------------------------- contract


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_signals_are_exactly_the_catalogue_signals_of_the_powertrain(
    powertrain: Powertrain,
) -> None:
    model = model_of(powertrain)
    assert set(model.read_signals()) == {s.name for s in signals_for(powertrain)}


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_every_value_passes_the_catalogue_for_an_hour(powertrain: Powertrain) -> None:
    for index in range(len(PROFILES[powertrain])):
        model = model_of(powertrain, seed=index, index=index)
        assert_valid(model.read_signals(), powertrain)
        for signals in drive(model, 3600, step_ms=2000):
            assert_valid(signals, powertrain)


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_samples_fit_the_wire_model(powertrain: Powertrain) -> None:
    model = model_of(powertrain)
    signals = list(drive(model, 5))[-1]
    sample = Sample(ts=model.now_ms, signals=signals)
    assert sample.signals == signals


def test_same_seed_and_times_give_identical_signals() -> None:
    for powertrain in Powertrain:
        a, b = model_of(powertrain, seed=7), model_of(powertrain, seed=7)
        assert list(drive(a, 900)) == list(drive(b, 900))
        assert a.drain_events() == b.drain_events()


def test_different_seeds_give_different_journeys() -> None:
    a, b = model_of(Powertrain.ICE, seed=1), model_of(Powertrain.ICE, seed=2)
    assert list(drive(a, 60)) != list(drive(b, 60))


def test_time_must_not_go_backwards() -> None:
    model = model_of(Powertrain.BEV)
    model.step(START_MS + 5000)
    model.step(START_MS + 5000)  # dt = 0 is fine
    with pytest.raises(ValueError, match="backwards"):
        model.step(START_MS + 4000)


# ---------------------------------------------------------------------------------- motion


@settings(max_examples=25, deadline=None)
@given(
    powertrain=st.sampled_from(list(Powertrain)),
    seed=st.integers(0, 2**32),
    steps_ms=st.lists(
        st.one_of(st.integers(0, 3000), st.integers(3000, 7_200_000)), min_size=1, max_size=80
    ),
)
def test_invariants_hold_for_any_step_schedule(
    powertrain: Powertrain, seed: int, steps_ms: Sequence[int]
) -> None:
    model = model_of(powertrain, seed=seed, index=seed % len(PROFILES[powertrain]))
    previous = model.read_signals()
    t = START_MS
    for dt in steps_ms:
        t += dt
        model.step(t)
        signals = model.read_signals()
        assert_valid(signals, powertrain)
        assert float(signals[ODO]) >= float(previous[ODO])
        for wheel in ("Row1.Wheel.Left", "Row2.Wheel.Right"):
            pad = f"Vehicle.Chassis.Axle.{wheel}.Brake.PadWear"
            assert int(signals[pad]) >= int(previous[pad])
        # Sunday outings leave the city for the lakes and mountains, at most 70 km out.
        assert MUNICH.contains(float(signals[LAT]), float(signals[LON]), margin_km=60.0)
        previous = signals


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_distance_matches_integrated_speed_and_positions(powertrain: Powertrain) -> None:
    model = model_of(powertrain, seed=3)
    first = model.read_signals()
    integrated_km = path_km = 0.0
    previous = first
    for signals in drive_active(model, 3600):
        # Trapezoid rule over the 1 s step, km/h -> km.
        integrated_km += (float(previous[SPEED]) + float(signals[SPEED])) / 2 / 3600
        path_km += haversine_km(
            float(previous[LAT]), float(previous[LON]), float(signals[LAT]), float(signals[LON])
        )
        previous = signals
    odometer_km = float(previous[ODO]) - float(first[ODO])
    assert odometer_km > 5.0  # it did drive
    # The tolerance covers corners cut within one step, the arrival snap and 1e-6 deg rounding.
    assert integrated_km == pytest.approx(odometer_km, rel=0.01)
    assert path_km == pytest.approx(odometer_km, rel=0.01)


@pytest.mark.parametrize("seed", range(6))
def test_weekday_driving_stays_in_the_city(seed: int) -> None:
    powertrain = list(Powertrain)[seed % 4]
    model = VehicleModel(profile_of(powertrain, seed % 3), random.Random(seed), WEEKDAY_MS)
    worst = max(
        MUNICH.distance_from_center_km(float(s[LAT]), float(s[LON]))
        for s in drive_active(model, 3600, step_ms=2000)
    )
    assert worst <= MUNICH.radius_km + 0.1


def test_heading_follows_the_direction_of_travel() -> None:
    model = model_of(Powertrain.ICE, seed=5)
    previous = model.read_signals()
    agree = total = 0
    for signals in drive_active(model, 1800):
        moved_km = haversine_km(
            float(previous[LAT]), float(previous[LON]), float(signals[LAT]), float(signals[LON])
        )
        if moved_km > 0.005:
            travel = bearing_deg(
                float(previous[LAT]), float(previous[LON]), float(signals[LAT]), float(signals[LON])
            )
            diff = abs(travel - float(signals["Vehicle.CurrentLocation.Heading"])) % 360.0
            total += 1
            agree += min(diff, 360.0 - diff) < 3.0
        previous = signals
    assert total > 300
    assert agree / total > 0.95  # the rest are steps that turned a corner


def test_rush_hour_is_busy_and_the_night_is_quiet() -> None:
    fleet = build_fleet(100, seed=8)
    rush = night = 0
    for i, profile in enumerate(fleet):
        model = VehicleModel(profile, random.Random(i), WEEKDAY_MS)  # 07:30 local
        rush += any(s["Vehicle.IsMoving"] for s in drive(model, 5400, step_ms=10_000))
        model = VehicleModel(profile, random.Random(i), WEEKDAY_MS - 5 * 3_600_000)  # 02:30
        night += any(s["Vehicle.IsMoving"] for s in drive(model, 1800, step_ms=10_000))
    assert rush >= 30
    assert night <= 2


def test_speed_profile_is_urban() -> None:
    model = model_of(Powertrain.BEV, seed=2)
    speeds = [float(s[SPEED]) for s in drive_active(model, 3600)]
    assert max(speeds) <= 140.0  # motorway legs of long trips included
    moving = [v for v in speeds if v > 0]
    assert 20.0 < sum(moving) / len(moving) < 100.0
    assert speeds.count(0.0) > 60  # it stopped: lights, destinations


def test_a_long_gap_parks_the_car_instead_of_driving_it() -> None:
    model = VehicleModel(profile_of(Powertrain.ICE), random.Random(1), WEEKDAY_MS)
    before = next(s for s in drive_active(model, 3600) if s["Vehicle.IsMoving"])
    assert model.phase.value == "driving"
    model.step(model.now_ms + 24 * 3600 * 1000)
    after = model.read_signals()
    assert after[ODO] == before[ODO]
    assert after[SPEED] == 0.0
    assert model.phase is Phase.PARKED
    # ... and it follows its routine again afterwards.
    assert any(s["Vehicle.IsMoving"] for s in drive_active(model, 120))


# ---------------------------------------------------------------------------------- energy


def test_fuel_only_falls_while_driving() -> None:
    model = model_of(Powertrain.ICE, seed=4)
    tank = model.tank
    assert tank is not None
    tank.level_l = tank.capacity_l * 0.6  # far from the refuel threshold
    start_l = tank.level_l
    for _ in drive_active(model, 3600):
        assert 0.0 <= tank.level_l <= tank.capacity_l
        assert tank.level_l <= start_l
        start_l = tank.level_l
    assert tank.level_l < tank.capacity_l * 0.6 - 1.0  # an hour in town burns litres


def test_bev_state_of_charge_falls_over_a_drive() -> None:
    model = model_of(Powertrain.BEV, seed=4)
    battery = model.battery
    assert battery is not None
    battery.soc = 0.8
    socs = [float(s[SOC]) for s in drive(model, 3600)]
    assert all(0.0 <= x <= 100.0 for x in socs)
    assert socs[-1] < 80.0 - 2.0
    # Regeneration may add a little while braking, never much in one second.
    assert all(b - a < 0.15 for a, b in itertools.pairwise(socs))  # 0.1 = rounding


def test_low_tank_is_refuelled_at_the_end_of_the_trip() -> None:
    model = model_of(Powertrain.ICE, seed=6)
    tank = model.tank
    assert tank is not None
    tank.level_l = tank.capacity_l * 0.06
    levels = [int(s[FUEL]) for s in drive(model, 4 * 3600)]
    assert min(levels) < 10
    assert max(levels[levels.index(min(levels)) :]) == 100


@pytest.mark.parametrize("powertrain", [Powertrain.BEV, Powertrain.PHEV])
def test_low_battery_is_charged_at_the_end_of_the_trip(powertrain: Powertrain) -> None:
    model = model_of(powertrain, seed=6)
    battery, charging = model.battery, model.charging
    assert battery is not None and charging is not None
    battery.soc = 0.1
    battery.depleting = False
    model.owner = dataclasses.replace(model.owner, home_charger=True)
    model.drain_events()
    charging_seen: list[Signals] = []
    for signals in drive_active(model, 12 * 3600, step_ms=5000):
        if signals[f"{CH}.IsCharging"]:
            charging_seen.append(signals)
            assert signals[f"{CH}.IsChargingCableConnected"]
            assert signals["Vehicle.Speed"] == 0.0
            assert float(signals[f"{CH}.ChargeRate"]) > 0.0
            assert int(signals[f"{CH}.TimeToComplete"]) > 0
            assert float(signals["Vehicle.Powertrain.TractionBattery.CurrentPower"]) > 0.0
        else:
            assert signals[f"{CH}.TimeToComplete"] == 0
    assert charging_seen
    # Charged to the limit, or unplugged on the way to the next trip after a real charge.
    gained = float(charging_seen[-1][SOC]) - float(charging_seen[0][SOC])
    assert float(charging_seen[-1][SOC]) >= charging.limit_pct - 2.0 or gained > 20.0
    types = [e.type for e in model.drain_events()]
    assert EventType.CHARGING_START in types
    assert EventType.CHARGING_END in types


def test_hybrid_keeps_its_battery_in_the_window() -> None:
    model = model_of(Powertrain.HEV, seed=1)
    socs = [float(s[SOC]) for s in drive(model, 3 * 3600, step_ms=2000)]
    assert min(socs) > 30.0
    assert max(socs) <= 80.0


# ---------------------------------------------------------------------------------- components


def test_engine_warms_up_while_driving_and_cools_when_parked() -> None:
    model = model_of(Powertrain.ICE, seed=2)
    engine = model.engine
    assert engine is not None
    engine.coolant_c = engine.oil_c = 5.0
    signals = list(drive_active(model, 3600))
    coolant = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
    assert 80.0 <= max(float(s[coolant]) for s in signals) <= 100.0
    running = [s for s in signals if s["Vehicle.Powertrain.CombustionEngine.IsRunning"]]
    assert all(int(s["Vehicle.Powertrain.CombustionEngine.Speed"]) >= 700 for s in running)
    moving = [s for s in running if float(s[SPEED]) > 30.0]
    assert all(int(s["Vehicle.Powertrain.Transmission.CurrentGear"]) >= 2 for s in moving)
    model.step(model.now_ms + 3 * 3600 * 1000)  # parked for three hours
    parked = model.read_signals()
    assert float(parked[coolant]) < 50.0
    assert parked["Vehicle.Powertrain.CombustionEngine.IsRunning"] is False
    assert parked["Vehicle.Powertrain.CombustionEngine.Speed"] == 0
    assert parked["Vehicle.Powertrain.Transmission.CurrentGear"] == 0


def test_low_voltage_battery_charges_while_on_and_rests_when_off() -> None:
    model = model_of(Powertrain.BEV, seed=3)
    on = next(s for s in drive_active(model, 3600) if model.phase is Phase.DRIVING)
    on = list(drive(model, 60))[-1] if model.phase is Phase.DRIVING else on
    assert 13.8 <= float(on["Vehicle.LowVoltageBattery.CurrentVoltage"]) <= 14.6
    model.step(model.now_ms + 3 * 3600 * 1000)
    off = model.read_signals()
    assert 12.2 <= float(off["Vehicle.LowVoltageBattery.CurrentVoltage"]) <= 12.9
    assert float(off["Vehicle.LowVoltageBattery.CurrentCurrent"]) < 0.0


def test_tyre_pressures_are_plausible_and_follow_temperature() -> None:
    model = model_of(Powertrain.PHEV, seed=3)
    signals = list(drive(model, 1800))
    pressure = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"
    temperature = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Temperature"
    assert all(200 <= int(s[pressure]) <= 280 for s in signals)
    coldest = min(signals, key=lambda s: float(s[temperature]))
    warmest = max(signals, key=lambda s: float(s[temperature]))
    assert int(warmest[pressure]) >= int(coldest[pressure])


def test_service_counts_down_with_distance_and_time() -> None:
    model = model_of(Powertrain.HEV, seed=2)
    first = model.read_signals()
    last = list(drive(model, 1800))[-1]
    driven = float(last[ODO]) - float(first[ODO])
    distance = "Vehicle.Service.DistanceToService"
    assert float(first[distance]) - float(last[distance]) == pytest.approx(driven, abs=0.11)
    elapsed = int(first["Vehicle.Service.TimeToService"]) - int(
        last["Vehicle.Service.TimeToService"]
    )
    assert elapsed == pytest.approx(1800, abs=1)


def test_trip_events_alternate() -> None:
    model = model_of(Powertrain.ICE, seed=9)
    list(drive_active(model, 3 * 3600, step_ms=2000))
    trips = [
        e for e in model.drain_events() if e.type in (EventType.TRIP_START, EventType.TRIP_END)
    ]
    assert len(trips) >= 4
    assert all(a.type != b.type for a, b in itertools.pairwise(trips))
    assert all(a.ts_ms <= b.ts_ms for a, b in itertools.pairwise(trips))
    assert model.drain_events() == []


def test_rounding_keeps_payloads_small() -> None:
    model = model_of(Powertrain.PHEV, seed=1)
    signals = list(drive(model, 30))[-1]
    for name, value in signals.items():
        if isinstance(value, float):
            assert len(repr(value)) <= 16, (name, value)
            assert not math.isnan(value)
