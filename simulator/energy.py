"""Where a driving car's energy comes from and goes to.

Road load (SAE J2263 style coefficients) gives the power at the wheels; :func:`propel` splits
it between the combustion engine, the traction battery (including regeneration and hybrid
charge sustaining) and the friction brakes, and updates fuel, state of charge, engine speed,
gear and brake pad wear. The per-car constants (engine efficiency, auxiliary load) are
calibrated here too, as the inverse of the same model, so that a car's urban consumption comes
out as its profile says.
"""

from __future__ import annotations

from simulator.components import CarComponents, Charging, TractionBattery
from simulator.fleet import VehicleProfile

AIR_DENSITY = 1.2
ROLLING_RESISTANCE = 0.011
GRAVITY = 9.81
FUEL_J_PER_L = 32.0e6  # petrol lower heating value
IDLE_FUEL_L_PER_H = 0.6
URBAN_FACTOR_ICE = 1.6  # urban consumption / steady 50 km/h consumption
URBAN_FACTOR_EV = 1.3
DRIVE_EFFICIENCY = 0.88  # battery -> wheel
REGEN_EFFICIENCY = 0.65  # wheel -> battery
CHARGE_EFFICIENCY = 0.92

# Rpm per km/h in each gear of a typical 6-speed gearbox (index = gear).
GEAR_RPM_PER_KMH = (0.0, 130.0, 75.0, 50.0, 38.0, 31.0, 26.0)
IDLE_RPM = 800.0

AVG_WINDOW_KM = 50.0  # trip-computer averaging distance behind the range estimates
LV_LOAD_W = 300.0  # 12 V consumers fed by alternator / DC-DC converter
HYBRID_CHARGE_W = 4000.0
HYBRID_ASSIST_W = 20_000.0
PHEV_SUSTAIN_SOC = 0.14  # below this a PHEV leaves electric mode and holds the charge
HEV_TARGET_SOC = 0.55
# Friction braking energy (J per kg of vehicle mass, all four wheels together) after which the
# pads are worn out: urban driving dissipates ~100 J/kg per km, and front pads last ~50,000 km
# on a car that brakes by friction only; rear pads do less work and last longer.
PAD_LIFE_FRONT_J_PER_KG = 5.0e6
PAD_LIFE_REAR_J_PER_KG = 9.0e6


def road_load_w(mass_kg: float, drag_area_m2: float, v: float, accel: float) -> float:
    """Power at the wheels: inertia + aerodynamic drag + rolling resistance."""
    if v <= 0.0:
        return 0.0
    return v * (
        mass_kg * accel
        + 0.5 * AIR_DENSITY * drag_area_m2 * v * v
        + ROLLING_RESISTANCE * mass_kg * GRAVITY
    )


def engine_efficiency(profile: VehicleProfile, fuel_l_per_100km: float) -> float:
    """Part-load efficiency such that steady 50 km/h burns the urban figure divided by the
    stop-and-go factor; the road-load model then yields the urban figure by itself."""
    p_ref = road_load_w(profile.mass_kg, profile.drag_area_m2, 50.0 / 3.6, 0.0)
    steady_l_per_h = fuel_l_per_100km / URBAN_FACTOR_ICE * 0.5
    fuel_w = max(steady_l_per_h - IDLE_FUEL_L_PER_H, 0.3) * FUEL_J_PER_L / 3600.0
    return min(max(p_ref / fuel_w, 0.15), 0.38)


def aux_load_w(profile: VehicleProfile) -> float:
    """Auxiliary load that makes steady 50 km/h use the urban figure / stop-and-go factor."""
    if profile.energy_kwh_per_100km is None:
        return LV_LOAD_W
    p_ref = road_load_w(profile.mass_kg, profile.drag_area_m2, 50.0 / 3.6, 0.0)
    steady_w = profile.energy_kwh_per_100km / URBAN_FACTOR_EV * 500.0  # kWh/100 km at 50 km/h
    return min(max(steady_w - p_ref / DRIVE_EFFICIENCY, 250.0), 2_500.0)


def propel(car: CarComponents, wheel_w: float, v_avg: float, ds_km: float, h: float) -> None:
    """Split the wheel power between engine, battery and friction brakes."""
    battery, engine, tank, charging = car.battery, car.engine, car.tank, car.charging
    v_new, accel = car.motion.speed_mps, car.motion.accel_mps2
    drive_w = max(wheel_w, 0.0)
    brake_w = max(-wheel_w, 0.0)
    regen_w = 0.0
    if battery is not None and v_avg > 2.0:
        full = 0.8 if charging is None else 0.97
        if battery.soc < full:
            regen_w = min(brake_w, 60_000.0 if charging is not None else 25_000.0)
    wear_pads(car, (brake_w - regen_w) * h)
    engine_on = engine is not None and engine_wanted(car, drive_w, v_new)
    engine_w = 0.0
    battery_w = regen_w * REGEN_EFFICIENCY  # VSS sign: + into the battery
    if engine_on:
        # Charge sustaining: the engine charges a low battery, a full one assists it, so
        # that regeneration does not fill the battery trip after trip.
        hybrid_w = 0.0
        if battery is not None:
            if battery.soc < sustain_soc(car):
                hybrid_w = HYBRID_CHARGE_W
            elif battery.soc > sustain_soc(car) + 0.05:
                hybrid_w = -min(0.4 * drive_w, HYBRID_ASSIST_W)
        engine_w = drive_w + LV_LOAD_W + hybrid_w
        battery_w += hybrid_w if hybrid_w >= 0.0 else hybrid_w / DRIVE_EFFICIENCY
    elif battery is not None:
        battery_w -= drive_w / DRIVE_EFFICIENCY + car.aux_load_w
    if engine is not None and tank is not None:
        fuel_l = 0.0
        # Overrun fuel cut-off: no fuel while the car coasts or brakes at speed.
        if engine_on and not (wheel_w < 0.0 and v_avg > 3.0):
            fuel_l = (
                IDLE_FUEL_L_PER_H / 3600.0 + engine_w / (engine.efficiency * FUEL_J_PER_L)
            ) * h
        tank.level_l = max(0.0, tank.level_l - fuel_l)
        tank.instant_l_per_100km = fuel_l / ds_km * 100.0 if v_new > 1.0 and ds_km > 0 else 0.0
        if engine_on:
            avg = tank.avg_l_per_km + (fuel_l - tank.avg_l_per_km * ds_km) / AVG_WINDOW_KM
            tank.avg_l_per_km = min(max(avg, 0.02), 0.5)
        engine.running = engine_on
        engine.rpm = engine_rpm(car, engine_on, v_new, accel, engine_w)
    if battery is not None:
        battery.power_w = battery_w
        energy_kwh = battery_w * h / 3.6e6
        capacity = battery.capacity_kwh * battery.soh_pct / 100.0
        battery.soc = min(max(battery.soc + energy_kwh / capacity, 0.0), 1.0)
        if charging is not None and not engine_on:
            avg = battery.avg_kwh_per_km + (-energy_kwh - battery.avg_kwh_per_km * ds_km) / (
                AVG_WINDOW_KM
            )
            battery.avg_kwh_per_km = min(max(avg, 0.05), 0.6)
    transmission = car.transmission
    if not transmission.stepped or engine is None:
        transmission.gear = 1  # single-speed reduction gear / e-CVT: "drive"


def sustain_soc(car: CarComponents) -> float:
    """State of charge that a hybrid's engine holds the battery at."""
    return HEV_TARGET_SOC if car.charging is None else PHEV_SUSTAIN_SOC


def engine_wanted(car: CarComponents, drive_w: float, v: float) -> bool:
    """Whether the engine should run now (a PHEV leaves electric mode here when nearly empty)."""
    battery, engine = car.battery, car.engine
    if battery is None or engine is None:
        return engine is not None  # a plain ICE runs for the whole trip
    if car.charging is not None and battery.depleting:
        if battery.soc >= PHEV_SUSTAIN_SOC:
            return drive_w > 60_000.0  # kick-down is the only reason to start in EV mode
        battery.depleting = False
    target = sustain_soc(car)
    # Hysteresis so that the engine does not start and stop every second.
    if engine.running:
        return not (drive_w < 6_000.0 and v < 12.5 and battery.soc > target)
    return drive_w > 15_000.0 or v > 16.7 or battery.soc < target - 0.08


def engine_rpm(car: CarComponents, running: bool, v: float, accel: float, engine_w: float) -> float:
    """Engine speed; with a stepped gearbox also selects the gear."""
    v_kmh = v * 3.6
    transmission = car.transmission
    if transmission.stepped:
        # Automatic gearbox: the highest gear that keeps revs above the shift point, which
        # rises when the driver accelerates hard.
        shift_rpm = 1400.0 + 700.0 * min(1.0, max(0.0, accel) / 2.0)
        gear = 1
        for g in range(len(GEAR_RPM_PER_KMH) - 1, 0, -1):
            if v_kmh * GEAR_RPM_PER_KMH[g] >= shift_rpm:
                gear = g
                break
        transmission.gear = gear
        rpm = v_kmh * GEAR_RPM_PER_KMH[gear]
    else:
        rpm = 1100.0 + engine_w * 0.06  # e-CVT: revs follow power demand
    if not running:
        return 0.0
    engine = car.engine
    idle = IDLE_RPM + (200.0 if engine is not None and engine.coolant_c < 40.0 else 0.0)
    return min(max(rpm, idle), 6000.0)


def wear_pads(car: CarComponents, friction_j: float) -> None:
    """Wear the brake pads by the energy the friction brakes dissipated."""
    if friction_j <= 0.0:
        return
    mass = car.profile.mass_kg
    front = friction_j * 100.0 / (PAD_LIFE_FRONT_J_PER_KG * mass)
    rear = friction_j * 100.0 / (PAD_LIFE_REAR_J_PER_KG * mass)
    for i, wheel in enumerate(car.wheels):
        wheel.pad_wear_pct = min(100.0, wheel.pad_wear_pct + (front if i < 2 else rear))


def charge_power_w(battery: TractionBattery, charging: Charging) -> float:
    """Power into the battery while plugged in."""
    # CC-CV: full power up to 80 % (DC) / 95 % (AC), then tapering towards 20 %.
    knee = 0.8 if charging.max_power_w > 22_000.0 else 0.95
    taper = 1.0 if battery.soc <= knee else max(0.2, 1.0 - 0.8 * (battery.soc - knee) / (1 - knee))
    return charging.session_power_w * CHARGE_EFFICIENCY * taper
