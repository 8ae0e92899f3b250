"""The state a car's components start in, drawn from its profile and its own random stream.

A fleet of identical profiles would look fake, so each car gets its own fuel level, state of
charge and battery health for its age, charger, tyre pressures, brake pad wear for its mileage
and service schedule. The draws are in a fixed order: the same profile and seed give the same
car (the simulator's determinism rests on it).
"""

from __future__ import annotations

import random

from protocol.catalogue import Powertrain
from simulator.components import Charging, Engine, FuelTank, Service, TractionBattery, Wheel
from simulator.energy import HEV_TARGET_SOC, engine_efficiency
from simulator.fleet import VehicleProfile


def new_engine(
    profile: VehicleProfile, rng: random.Random, ambient: float
) -> tuple[Engine | None, FuelTank | None]:
    """Engine and fuel tank, or ``(None, None)`` for a car without a combustion engine."""
    p = profile
    if p.tank_l is None or p.fuel_l_per_100km is None or not p.has_engine:
        return None, None
    efficiency = engine_efficiency(p, p.fuel_l_per_100km)
    oil = "NORMAL" if rng.random() < 0.97 else "LOW"
    engine = Engine(efficiency, ambient, ambient, oil_level=oil)
    tank = FuelTank(p.tank_l, p.tank_l * rng.uniform(0.08, 0.95), p.fuel_l_per_100km / 100.0)
    return engine, tank


def new_battery(
    profile: VehicleProfile, rng: random.Random, ambient: float, age_years: float
) -> tuple[TractionBattery | None, Charging | None]:
    """Traction battery and, for a plug-in, its charging equipment."""
    p = profile
    if p.battery_kwh is None or not p.has_traction_battery:
        return None, None
    cap = p.battery_kwh
    nominal_v = 200.0 if cap < 3.0 else 350.0 if cap < 30.0 else 400.0
    soh = max(70.0, 100.0 - age_years * rng.uniform(0.8, 2.2))
    per_km = (p.energy_kwh_per_100km or 15.0) / 100.0
    # HEVs keep their small battery around a target; plug-ins arrive at any charge.
    soc = rng.uniform(0.2, 0.95) if p.is_plug_in else HEV_TARGET_SOC + rng.uniform(-0.05, 0.05)
    battery = TractionBattery(cap, soc, soh, ambient, nominal_v, per_km)
    if not p.is_plug_in:
        return battery, None
    if p.powertrain is Powertrain.BEV:
        limit = rng.choice((80, 80, 90, 100))
        max_w = min(150_000.0, cap * 1_600.0)  # DC fast charging, ~1.6 C peak
    else:
        limit = 100
        max_w = rng.choice((3_700.0, 7_400.0, 11_000.0))  # AC on-board charger
    return battery, Charging(limit, max_w)


PAD_RENEWAL_WEAR_PERCENT = 70.0


def new_wheels(
    rng: random.Random, ambient: float, odometer: float, *, regen_braking: bool
) -> tuple[Wheel, ...]:
    """Four wheels (front left, front right, rear left, rear right) worn for the mileage."""
    cold = rng.uniform(232.0, 248.0)
    # Regenerative braking does most of the stopping in electrified cars.
    life = 2.5 if regen_braking else 1.0
    wheels = []
    for i in range(4):
        life_km = (45_000.0 if i < 2 else 80_000.0) * life
        # Workshops renew pads at a service once they are about 70 % worn (a few millimetres
        # left), so a healthy car starts well below the 90 % wear limit and healthy wear
        # (~2 %/1000 km) cannot reach it within a run: a car that does has a fault, and the
        # ground truth says so.
        wear = (odometer % life_km) / life_km * PAD_RENEWAL_WEAR_PERCENT + rng.uniform(0.0, 3.0)
        wheels.append(Wheel(cold + rng.uniform(-3.0, 3.0), ambient, min(wear, 95.0)))
    return tuple(wheels)


def new_service(
    profile: VehicleProfile, rng: random.Random, odometer: float, start_ms: int
) -> Service:
    """Next service, somewhere within the maker's distance and time interval."""
    bev = profile.powertrain is Powertrain.BEV
    interval_km = 30_000.0 if bev else 15_000.0
    interval_s = (730 if bev else 365) * 86_400
    due_km = odometer + interval_km * rng.uniform(0.02, 1.0)
    due_ms = start_ms + int(interval_s * rng.uniform(0.02, 1.0)) * 1000
    return Service(due_km, due_ms)
