"""The physics of one simulated car: where it is, how fast it goes, what its components read.

The model is a pure state machine: :meth:`VehicleModel.step` advances it to a time the caller
passes in, :meth:`VehicleModel.read_signals` reads every catalogue signal of the car's
powertrain. No I/O and no clock, so a fleet can be simulated faster than real time and a test
can replay it exactly (same profile, seed and step times -> same signals).

The car alternates between a trip (accelerate, cruise with noise, stop at traffic lights, slow
for corners, brake to a stop at the destination) and a short dwell. Each component keeps its
state in a small object (:class:`Engine`, :class:`FuelTank`, :class:`TractionBattery`, ...)
that later layers (daily routines, fault injection with ground truth) can read and perturb.

Motion happens in the city's local east/north plane in km (see :mod:`simulator.city`), so one
step is a few dozen float operations; 2,000 cars at 1 Hz cost a small fraction of a CPU.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections import deque
from dataclasses import dataclass
from enum import Enum

from protocol.catalogue import FLOAT_TYPES, Datatype, Powertrain, signals_for
from protocol.messages import EventType
from simulator.city import MUNICH, City
from simulator.fleet import VehicleProfile

SignalValue = bool | int | float | str

# Motion. A 1 s sub-step keeps the braking curves accurate to well under a metre.
MAX_SUBSTEP_S = 1.0
#: A longer gap between two steps is treated as "the simulator was paused": the car pulls over
#: where it is and stays parked for the gap instead of replaying hours of driving.
MAX_CATCH_UP_S = 600.0
PARKED_CHUNK_S = 60.0  # charging/refuelling integrate in chunks (taper, limits)
BRAKE_COMFORT_MPS2 = 1.8
BRAKE_MAX_MPS2 = 4.0
CORNER_SPEED_MPS = 20.0 / 3.6
MIN_TRIP_KM = 1.5
TRAFFIC_STOP_SPACING_KM = 0.9  # mean distance between stops at lights / junctions
SPEED_NOISE_MPS = 1.3  # stationary std of the cruise-speed wander
SPEED_NOISE_TAU_S = 15.0

# Road load (SAE J2263 style coefficients) and energy.
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
REFUEL_L_PER_S = 0.6
REFUEL_BELOW = 0.10
CHARGE_BELOW = 0.15

# Rpm per km/h in each gear of a typical 6-speed gearbox (index = gear).
GEAR_RPM_PER_KMH = (0.0, 130.0, 75.0, 50.0, 38.0, 31.0, 26.0)
IDLE_RPM = 800.0

SERVICE_DUE_KM = 1000.0  # VSS IsServiceDue: "service needed now or in the near future"
SERVICE_DUE_S = 30 * 86_400
TIRE_REFERENCE_C = 15.0  # cold pressure is what the owner set at this temperature
ATMOSPHERE_KPA = 101.3

_MS_PER_YEAR = 365.2425 * 86_400_000


class Phase(Enum):
    DRIVING = "driving"  # on a trip, including waits at traffic lights
    PARKED = "parked"


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """Something discrete that happened, for the outer layer to publish as an event message."""

    ts_ms: int
    type: EventType


@dataclass(slots=True)
class Motion:
    east_km: float
    north_km: float
    heading_deg: float
    odometer_km: float
    speed_mps: float = 0.0
    accel_mps2: float = 0.0


@dataclass(slots=True)
class Route:
    """A trip as straight segments between waypoints, with the car's progress along it."""

    starts: list[tuple[float, float]]
    units: list[tuple[float, float]]  # unit vector of each segment
    lengths_km: list[float]
    headings_deg: list[float]
    length_km: float
    cruise_mps: float
    next_stop_km: float  # route position of the next stop (traffic light); inf if none
    seg: int = 0
    seg_done_km: float = 0.0
    done_km: float = 0.0
    hold_s: float = 0.0  # time left waiting at a stop
    noise_mps: float = 0.0


@dataclass(slots=True)
class Engine:
    efficiency: float  # indicated efficiency at part load, calibrated from the profile
    coolant_c: float
    oil_c: float
    running: bool = False
    rpm: float = 0.0
    oil_level: str = "NORMAL"


@dataclass(slots=True)
class FuelTank:
    capacity_l: float
    level_l: float
    avg_l_per_km: float  # trip-computer average, basis of the range estimate
    instant_l_per_100km: float = 0.0
    refuelling: bool = False


@dataclass(slots=True)
class TractionBattery:
    capacity_kwh: float  # usable, when new
    soc: float  # 0..1
    soh_pct: float
    temp_c: float
    nominal_v: float
    avg_kwh_per_km: float
    power_w: float = 0.0  # VSS sign: positive = into the battery
    #: PHEV: charge-depleting (electric) mode until the battery is nearly empty.
    depleting: bool = True


@dataclass(slots=True)
class Charging:
    limit_pct: int
    max_power_w: float
    cable_connected: bool = False
    charging: bool = False
    session_power_w: float = 0.0


@dataclass(slots=True)
class LowVoltageBattery:
    voltage_v: float
    current_a: float
    charge_v: float  # regulator set point of alternator / DC-DC converter
    switched_s: float = 0.0  # model time of the last on/off change


@dataclass(slots=True)
class Wheel:
    cold_kpa: float
    temp_c: float
    pad_wear_pct: float


@dataclass(slots=True)
class Service:
    due_odometer_km: float
    due_ms: int


@dataclass(slots=True)
class Cabin:
    temp_c: float
    setpoint_c: float


def _relax(value: float, target: float, dt_s: float, tau_s: float) -> float:
    """First-order lag: exact solution of dT/dt = (target - T) / tau over dt."""
    return target + (value - target) * math.exp(-dt_s / tau_s)


def _reachable_speed(v: float, dist_m: float, v_end: float, dt_s: float) -> float:
    """Highest speed after ``dt_s`` from which the car can still brake comfortably to ``v_end``
    within ``dist_m``: solves v'^2 = v_end^2 + 2b(d - (v + v')dt/2) for v'."""
    b = BRAKE_COMFORT_MPS2
    c = v_end * v_end + 2.0 * b * dist_m - b * dt_s * v
    if c <= 0.0:
        return 0.0
    return (-b * dt_s + math.sqrt(b * b * dt_s * dt_s + 4.0 * c)) / 2.0


def _road_load_w(mass_kg: float, drag_area_m2: float, v: float, accel: float) -> float:
    """Power at the wheels: inertia + aerodynamic drag + rolling resistance."""
    if v <= 0.0:
        return 0.0
    return v * (
        mass_kg * accel
        + 0.5 * AIR_DENSITY * drag_area_m2 * v * v
        + ROLLING_RESISTANCE * mass_kg * GRAVITY
    )


_FLOAT, _INT, _AS_IS = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Format:
    """How one catalogue signal is put on the wire (precomputed once per car)."""

    name: str
    kind: int  # _FLOAT, _INT or _AS_IS
    decimals: int
    lo: float
    hi: float


# Wire resolution: enough for every consumer, small payloads (1e-6 deg is 0.1 m).
_DECIMALS = {
    "Vehicle.CurrentLocation.Latitude": 6,
    "Vehicle.CurrentLocation.Longitude": 6,
    "Vehicle.TraveledDistance": 3,
    "Vehicle.Acceleration.Longitudinal": 2,
    "Vehicle.LowVoltageBattery.CurrentVoltage": 2,
    "Vehicle.LowVoltageBattery.CurrentCurrent": 2,
    "Vehicle.Powertrain.TractionBattery.CurrentPower": 0,
}


@functools.cache
def _formats(powertrain: Powertrain) -> tuple[_Format, ...]:
    # Cached per powertrain: the catalogue is immutable and 2,000 cars share four tables.
    out = []
    for spec in signals_for(powertrain):
        if spec.datatype in FLOAT_TYPES:
            kind = _FLOAT
        elif spec.datatype in (Datatype.BOOLEAN, Datatype.STRING):
            kind = _AS_IS
        else:
            kind = _INT
        lo = spec.min if spec.min is not None else -math.inf
        hi = spec.max if spec.max is not None else math.inf
        out.append(_Format(spec.name, kind, _DECIMALS.get(spec.name, 1), lo, hi))
    return tuple(out)


_LOC = "Vehicle.CurrentLocation"
_FS = "Vehicle.Powertrain.FuelSystem"
_CE = "Vehicle.Powertrain.CombustionEngine"
_TB = "Vehicle.Powertrain.TractionBattery"
_CH = f"{_TB}.Charging"
_WHEEL_NAMES = tuple(
    (
        f"Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Tire.Pressure",
        f"Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Tire.Temperature",
        f"Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Brake.PadWear",
    )
    for row in (1, 2)
    for side in ("Left", "Right")
)

START_DRIVING_SHARE = 0.85
DWELL_S = (20.0, 240.0)
UNPLUG_DELAY_S = (60.0, 240.0)
EVENT_BUFFER = 256  # the outer layer drains events every step; this only bounds a stalled one
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


class VehicleModel:
    """One car, stepped by the caller. See the module docstring."""

    def __init__(
        self, profile: VehicleProfile, rng: random.Random, start_ms: int, *, city: City = MUNICH
    ) -> None:
        self.profile = profile
        self.city = city
        self._rng = rng
        self._start_ms = start_ms
        self._t_s = 0.0  # model time: seconds since start_ms
        self._formats = _formats(profile.powertrain)
        self.events: deque[ModelEvent] = deque(maxlen=EVENT_BUFFER)
        self.phase = Phase.PARKED
        self.route: Route | None = None
        self._depart_s = 0.0
        self._gear = 0
        pt = profile.powertrain
        self._stepped_gears = pt in (Powertrain.ICE, Powertrain.PHEV)  # HEVs use an e-CVT
        ambient = city.air_temperature_c(start_ms)
        # Per-car character: driving style, sensor offsets, owner settings.
        self._accel_max = rng.uniform(1.5, 2.6)
        self._sensor_offset_c = rng.uniform(-0.6, 0.6)
        age_years = max(0.0, 1970.0 + start_ms / _MS_PER_YEAR - profile.model_year)
        age_years += rng.uniform(0.1, 1.0)
        odometer = age_years * rng.uniform(7_000.0, 20_000.0) + rng.uniform(5.0, 50.0)
        east, north = city.to_local(profile.home_lat, profile.home_lon)
        self.motion = Motion(east, north, rng.uniform(0.0, 360.0), odometer)
        self.cabin = Cabin(ambient, rng.uniform(19.5, 23.0))
        self.lv_battery = LowVoltageBattery(12.6, -0.05, rng.uniform(14.0, 14.4))
        self.engine, self.tank = self._make_engine(ambient)
        self.battery, self.charging = self._make_battery(ambient, age_years)
        self._aux_w = self._calibrate_aux_w()
        self.wheels = self._make_wheels(ambient, odometer)
        self.service = self._make_service(odometer, start_ms)
        if rng.random() < START_DRIVING_SHARE:
            self._start_trip(initial=True)
        else:
            self._depart_s = rng.uniform(0.0, 60.0)

    # ------------------------------------------------------------------ construction helpers

    def _make_engine(self, ambient: float) -> tuple[Engine | None, FuelTank | None]:
        p, rng = self.profile, self._rng
        if p.tank_l is None or p.fuel_l_per_100km is None or not p.has_engine:
            return None, None
        # Calibrate part-load efficiency so that steady 50 km/h burns the urban figure divided by
        # the stop-and-go factor; the road-load model then yields the urban figure by itself.
        p_ref = _road_load_w(p.mass_kg, p.drag_area_m2, 50.0 / 3.6, 0.0)
        steady_l_per_h = p.fuel_l_per_100km / URBAN_FACTOR_ICE * 0.5
        fuel_w = max(steady_l_per_h - IDLE_FUEL_L_PER_H, 0.3) * FUEL_J_PER_L / 3600.0
        efficiency = min(max(p_ref / fuel_w, 0.15), 0.38)
        oil = "NORMAL" if rng.random() < 0.97 else "LOW"
        engine = Engine(efficiency, ambient, ambient, oil_level=oil)
        tank = FuelTank(p.tank_l, p.tank_l * rng.uniform(0.08, 0.95), p.fuel_l_per_100km / 100.0)
        return engine, tank

    def _make_battery(
        self, ambient: float, age_years: float
    ) -> tuple[TractionBattery | None, Charging | None]:
        p, rng = self.profile, self._rng
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

    def _calibrate_aux_w(self) -> float:
        p = self.profile
        if p.energy_kwh_per_100km is None:
            return LV_LOAD_W
        p_ref = _road_load_w(p.mass_kg, p.drag_area_m2, 50.0 / 3.6, 0.0)
        steady_w = p.energy_kwh_per_100km / URBAN_FACTOR_EV * 500.0  # kWh/100 km at 50 km/h
        return min(max(steady_w - p_ref / DRIVE_EFFICIENCY, 250.0), 2_500.0)

    def _make_wheels(self, ambient: float, odometer: float) -> tuple[Wheel, ...]:
        rng = self._rng
        cold = rng.uniform(232.0, 248.0)
        # Regenerative braking does most of the stopping in electrified cars.
        life = 2.5 if self.battery is not None and self.profile.is_plug_in else 1.0
        wheels = []
        for i in range(4):
            life_km = (45_000.0 if i < 2 else 80_000.0) * life
            wear = (odometer % life_km) / life_km * 90.0 + rng.uniform(0.0, 3.0)
            wheels.append(Wheel(cold + rng.uniform(-3.0, 3.0), ambient, min(wear, 95.0)))
        return tuple(wheels)

    def _make_service(self, odometer: float, start_ms: int) -> Service:
        rng = self._rng
        bev = self.profile.powertrain is Powertrain.BEV
        interval_km = 30_000.0 if bev else 15_000.0
        interval_s = (730 if bev else 365) * 86_400
        due_km = odometer + interval_km * rng.uniform(0.02, 1.0)
        due_ms = start_ms + int(interval_s * rng.uniform(0.02, 1.0)) * 1000
        return Service(due_km, due_ms)

    # ------------------------------------------------------------------ time

    @property
    def now_ms(self) -> int:
        return self._start_ms + round(self._t_s * 1000.0)

    def _ambient_c(self, t_s: float) -> float:
        return self.city.air_temperature_c(self._start_ms + int(t_s * 1000.0))

    def step(self, now_ms: int) -> None:
        """Advance the model from the previous step (or ``start_ms``) to ``now_ms``."""
        t_end = (now_ms - self._start_ms) / 1000.0
        if t_end < self._t_s - 1e-6:
            raise ValueError(f"time went backwards: step({now_ms}) after {self.now_ms}")
        if t_end - self._t_s > MAX_CATCH_UP_S:
            self._pull_over(t_end)
        while t_end - self._t_s > 1e-9:
            remaining = t_end - self._t_s
            if self.phase is Phase.DRIVING:
                # Equal sub-steps of at most 1 s, so 1 Hz stepping is exactly one sub-step.
                n = math.ceil(remaining / MAX_SUBSTEP_S - 1e-9)
                self._drive(remaining / n)
            elif self._in_session():
                self._park(min(remaining, PARKED_CHUNK_S))
            elif self._depart_s > self._t_s:
                self._park(min(remaining, self._depart_s - self._t_s))
            else:
                self._start_trip()
        self._t_s = t_end

    def _in_session(self) -> bool:
        return (self.tank is not None and self.tank.refuelling) or (
            self.charging is not None and self.charging.charging
        )

    def _pull_over(self, t_end: float) -> None:
        # A long gap means the simulator was paused; the car is parked for it, so the gap adds
        # neither distance nor energy use. It drives off shortly after the gap.
        if self.phase is Phase.DRIVING:
            self._end_trip()
        self._depart_s = max(self._depart_s, t_end + self._rng.uniform(0.0, 30.0))

    def drain_events(self) -> list[ModelEvent]:
        """Events since the last call, oldest first."""
        events = list(self.events)
        self.events.clear()
        return events

    def _emit(self, event_type: EventType) -> None:
        self.events.append(ModelEvent(self.now_ms, event_type))

    # ------------------------------------------------------------------ trips

    def _plan_route(self) -> Route:
        rng, city, m = self._rng, self.city, self.motion
        x0, y0 = m.east_km, m.north_km
        x1, y1 = city.random_local_point(rng)
        for _ in range(8):
            if math.hypot(x1 - x0, y1 - y0) >= MIN_TRIP_KM:
                break
            x1, y1 = city.random_local_point(rng)
        dx, dy = x1 - x0, y1 - y0
        straight = math.hypot(dx, dy)
        # Zig-zag through a few waypoints offset sideways, like a street grid. The disc is
        # convex, so pulling each waypoint inside it keeps every segment inside the city.
        points = [(x0, y0)]
        legs = min(4, 1 + int(straight / 3.0))
        limit = city.radius_km * 0.98
        for i in range(1, legs):
            offset = rng.uniform(-0.2, 0.2) * straight / legs
            ux, uy = (dx / straight, dy / straight) if straight > 0 else (0.0, 0.0)
            px = x0 + dx * i / legs - uy * offset
            py = y0 + dy * i / legs + ux * offset
            r = math.hypot(px, py)
            if r > limit:
                px, py = px * limit / r, py * limit / r
            points.append((px, py))
        points.append((x1, y1))
        starts: list[tuple[float, float]] = []
        units: list[tuple[float, float]] = []
        lengths: list[float] = []
        headings: list[float] = []
        for (ax, ay), (bx, by) in itertools.pairwise(points):
            length = math.hypot(bx - ax, by - ay)
            if length < 1e-6:
                continue
            starts.append((ax, ay))
            units.append(((bx - ax) / length, (by - ay) / length))
            lengths.append(length)
            headings.append(math.degrees(math.atan2(bx - ax, by - ay)) % 360.0)
        if not lengths:  # destination == origin; a zero-length trip ends at once
            starts, units, lengths, headings = [(x0, y0)], [(0.0, 1.0)], [0.0], [m.heading_deg]
        total = sum(lengths)
        return Route(
            starts=starts,
            units=units,
            lengths_km=lengths,
            headings_deg=headings,
            length_km=total,
            cruise_mps=rng.uniform(30.0, 70.0) / 3.6,
            next_stop_km=self._next_stop_km(0.0),
        )

    def _next_stop_km(self, done_km: float) -> float:
        return done_km + max(0.15, self._rng.expovariate(1.0 / TRAFFIC_STOP_SPACING_KM))

    def _start_trip(self, *, initial: bool = False) -> None:
        if self.charging is not None:
            self.charging.cable_connected = self.charging.charging = False
            self.charging.session_power_w = 0.0
        route = self.route = self._plan_route()
        self.motion.heading_deg = route.headings_deg[0]
        self.phase = Phase.DRIVING
        self.lv_battery.switched_s = self._t_s
        if initial:
            # Most cars start mid-journey so that a short demo or test sees traffic at once.
            self.motion.speed_mps = self._rng.uniform(0.0, route.cruise_mps)
            if self.engine is not None:
                warm = self._rng.random()
                self.engine.coolant_c += (90.0 - self.engine.coolant_c) * warm
                self.engine.oil_c += (95.0 - self.engine.oil_c) * warm * 0.8
        self._emit(EventType.TRIP_START)

    def _end_trip(self) -> None:
        rng, t = self._rng, self._t_s
        self.motion.speed_mps = self.motion.accel_mps2 = 0.0
        self.phase = Phase.PARKED
        self.route = None
        self.lv_battery.switched_s = t
        if self.engine is not None:
            self.engine.running = False
            self.engine.rpm = 0.0
        if self.battery is not None:
            self.battery.power_w = 0.0
        self._gear = 0
        self._emit(EventType.TRIP_END)
        self._depart_s = t + rng.uniform(*DWELL_S)
        tank, battery, charging = self.tank, self.battery, self.charging
        # Refuel / recharge at the end of the trip that went below the threshold.
        if tank is not None and tank.level_l < REFUEL_BELOW * tank.capacity_l:
            tank.refuelling = True
            self._depart_s = math.inf
        if charging is not None and battery is not None and battery.soc < CHARGE_BELOW:
            charging.cable_connected = charging.charging = True
            charging.session_power_w = charging.max_power_w
            self._depart_s = math.inf
            self._emit(EventType.CHARGING_START)

    def _session_ended(self) -> None:
        if not self._in_session():
            self._depart_s = self._t_s + self._rng.uniform(*UNPLUG_DELAY_S)

    # ------------------------------------------------------------------ driving

    def _drive(self, h: float) -> None:
        m, route = self.motion, self.route
        assert route is not None
        v = m.speed_mps
        arrived = False
        if route.hold_s > 0.0:
            route.hold_s = max(0.0, route.hold_s - h)
            v_new = ds_m = 0.0
        else:
            v_new = self._next_speed(route, v, h)
            ds_m = 0.5 * (v + v_new) * h
            d_stop_m = max(0.0, (min(route.next_stop_km, route.length_km) - route.done_km) * 1e3)
            if ds_m >= d_stop_m - 0.05:
                ds_m, v_new, arrived = d_stop_m, 0.0, True
            self._advance_along(route, ds_m / 1000.0)
        accel = (v_new - v) / h
        m.speed_mps, m.accel_mps2 = v_new, accel
        ds_km = ds_m / 1000.0
        m.odometer_km += ds_km
        self._t_s += h
        v_avg = 0.5 * (v + v_new)
        p = self.profile
        wheel_w = _road_load_w(p.mass_kg, p.drag_area_m2, v_avg, accel)
        ambient = self._ambient_c(self._t_s)
        self._propel(wheel_w, v_avg, ds_km, h)
        self._update_thermal_driving(v_new, h, ambient)
        if arrived:
            if route.done_km >= route.length_km - 1e-9:
                self._end_trip()
            else:  # a red light or junction: wait, then look for the next one
                route.hold_s = self._rng.uniform(5.0, 45.0)
                route.next_stop_km = self._next_stop_km(route.done_km)

    def _next_speed(self, route: Route, v: float, h: float) -> float:
        # Cruise speed wanders as an Ornstein-Uhlenbeck process (traffic, driver).
        tau = SPEED_NOISE_TAU_S
        noise = route.noise_mps * (1.0 - h / tau) if h < tau else 0.0
        noise += SPEED_NOISE_MPS * math.sqrt(2.0 * min(h, tau) / tau) * self._rng.gauss(0.0, 1.0)
        bound = 0.4 * route.cruise_mps
        route.noise_mps = noise = min(max(noise, -bound), bound)
        target = route.cruise_mps + noise
        d_stop_m = (min(route.next_stop_km, route.length_km) - route.done_km) * 1000.0
        target = min(target, _reachable_speed(v, d_stop_m, 0.0, h))
        if route.seg < len(route.lengths_km) - 1:
            d_corner_m = (route.lengths_km[route.seg] - route.seg_done_km) * 1000.0
            target = min(target, _reachable_speed(v, d_corner_m, CORNER_SPEED_MPS, h))
        if target >= v:
            return min(target, v + self._accel_max * h)
        return max(target, v - BRAKE_MAX_MPS2 * h, 0.0)

    def _advance_along(self, route: Route, ds_km: float) -> None:
        route.done_km += ds_km
        last = len(route.lengths_km) - 1
        rest = ds_km
        while route.seg < last and rest >= route.lengths_km[route.seg] - route.seg_done_km:
            rest -= route.lengths_km[route.seg] - route.seg_done_km
            route.seg += 1
            route.seg_done_km = 0.0
        route.seg_done_km = min(route.seg_done_km + rest, route.lengths_km[route.seg])
        (sx, sy), (ux, uy) = route.starts[route.seg], route.units[route.seg]
        m = self.motion
        m.east_km = sx + ux * route.seg_done_km
        m.north_km = sy + uy * route.seg_done_km
        m.heading_deg = route.headings_deg[route.seg]

    def _propel(self, wheel_w: float, v_avg: float, ds_km: float, h: float) -> None:
        """Split the wheel power between engine, battery and friction brakes."""
        battery, engine, tank = self.battery, self.engine, self.tank
        v_new, accel = self.motion.speed_mps, self.motion.accel_mps2
        drive_w = max(wheel_w, 0.0)
        brake_w = max(-wheel_w, 0.0)
        regen_w = 0.0
        if battery is not None and v_avg > 2.0:
            full = 0.8 if self.charging is None else 0.97
            if battery.soc < full:
                regen_w = min(brake_w, 60_000.0 if self.charging is not None else 25_000.0)
        self._wear_pads((brake_w - regen_w) * h)
        engine_on = engine is not None and self._engine_wanted(drive_w, v_new)
        engine_w = 0.0
        battery_w = regen_w * REGEN_EFFICIENCY  # VSS sign: + into the battery
        if engine_on:
            # Charge sustaining: the engine charges a low battery, a full one assists it, so
            # that regeneration does not fill the battery trip after trip.
            hybrid_w = 0.0
            if battery is not None:
                if battery.soc < self._sustain_soc():
                    hybrid_w = HYBRID_CHARGE_W
                elif battery.soc > self._sustain_soc() + 0.05:
                    hybrid_w = -min(0.4 * drive_w, HYBRID_ASSIST_W)
            engine_w = drive_w + LV_LOAD_W + hybrid_w
            battery_w += hybrid_w if hybrid_w >= 0.0 else hybrid_w / DRIVE_EFFICIENCY
        elif battery is not None:
            battery_w -= drive_w / DRIVE_EFFICIENCY + self._aux_w
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
            engine.rpm = self._engine_rpm(engine_on, v_new, accel, engine_w)
        if battery is not None:
            battery.power_w = battery_w
            energy_kwh = battery_w * h / 3.6e6
            capacity = battery.capacity_kwh * battery.soh_pct / 100.0
            battery.soc = min(max(battery.soc + energy_kwh / capacity, 0.0), 1.0)
            if self.charging is not None and not engine_on:
                avg = battery.avg_kwh_per_km + (-energy_kwh - battery.avg_kwh_per_km * ds_km) / (
                    AVG_WINDOW_KM
                )
                battery.avg_kwh_per_km = min(max(avg, 0.05), 0.6)
        if not self._stepped_gears or engine is None:
            self._gear = 1  # single-speed reduction gear / e-CVT: "drive"

    def _sustain_soc(self) -> float:
        return HEV_TARGET_SOC if self.charging is None else PHEV_SUSTAIN_SOC

    def _engine_wanted(self, drive_w: float, v: float) -> bool:
        battery, engine = self.battery, self.engine
        if battery is None or engine is None:
            return engine is not None  # a plain ICE runs for the whole trip
        if self.charging is not None and battery.depleting:
            if battery.soc >= PHEV_SUSTAIN_SOC:
                return drive_w > 60_000.0  # kick-down is the only reason to start in EV mode
            battery.depleting = False
        target = self._sustain_soc()
        # Hysteresis so that the engine does not start and stop every second.
        if engine.running:
            return not (drive_w < 6_000.0 and v < 12.5 and battery.soc > target)
        return drive_w > 15_000.0 or v > 16.7 or battery.soc < target - 0.08

    def _engine_rpm(self, running: bool, v: float, accel: float, engine_w: float) -> float:
        v_kmh = v * 3.6
        if self._stepped_gears:
            # Automatic gearbox: the highest gear that keeps revs above the shift point, which
            # rises when the driver accelerates hard.
            shift_rpm = 1400.0 + 700.0 * min(1.0, max(0.0, accel) / 2.0)
            gear = 1
            for g in range(len(GEAR_RPM_PER_KMH) - 1, 0, -1):
                if v_kmh * GEAR_RPM_PER_KMH[g] >= shift_rpm:
                    gear = g
                    break
            self._gear = gear
            rpm = v_kmh * GEAR_RPM_PER_KMH[gear]
        else:
            rpm = 1100.0 + engine_w * 0.06  # e-CVT: revs follow power demand
        if not running:
            return 0.0
        engine = self.engine
        idle = IDLE_RPM + (200.0 if engine is not None and engine.coolant_c < 40.0 else 0.0)
        return min(max(rpm, idle), 6000.0)

    def _wear_pads(self, friction_j: float) -> None:
        if friction_j <= 0.0:
            return
        mass = self.profile.mass_kg
        front = friction_j * 100.0 / (PAD_LIFE_FRONT_J_PER_KG * mass)
        rear = friction_j * 100.0 / (PAD_LIFE_REAR_J_PER_KG * mass)
        for i, wheel in enumerate(self.wheels):
            wheel.pad_wear_pct = min(100.0, wheel.pad_wear_pct + (front if i < 2 else rear))

    # ------------------------------------------------------------------ thermal and electrical

    def _update_thermal_driving(self, v: float, h: float, ambient: float) -> None:
        engine, battery = self.engine, self.battery
        if engine is not None:
            if engine.running:
                # Thermostat holds the coolant near 90 C; oil runs a little hotter and lags.
                load = min(1.0, engine.rpm / 5000.0)
                engine.coolant_c = _relax(engine.coolant_c, 88.0 + 5.0 * load, h, 240.0)
                engine.oil_c = _relax(engine.oil_c, 95.0 + 10.0 * load, h, 600.0)
            else:  # hybrid in electric mode
                engine.coolant_c = _relax(engine.coolant_c, ambient, h, 2700.0)
                engine.oil_c = _relax(engine.oil_c, ambient, h, 3600.0)
        if battery is not None:
            target = ambient + 3.0 + abs(battery.power_w) / 3000.0
            if self.charging is not None:  # liquid-cooled pack with thermal management
                target = min(max(target, 12.0), 38.0)
            battery.temp_c = _relax(battery.temp_c, target, h, 1800.0)
        self.cabin.temp_c = _relax(self.cabin.temp_c, self.cabin.setpoint_c, h, 300.0)
        # Tyres warm with flexing, roughly with speed.
        tyre_target = ambient + 3.0 + v * 0.9
        k = math.exp(-h / 600.0)
        for wheel in self.wheels:
            wheel.temp_c = tyre_target + (wheel.temp_c - tyre_target) * k
        self._update_lv(True, h)

    def _update_lv(self, on: bool, h: float) -> None:
        lv = self.lv_battery
        since = self._t_s - lv.switched_s
        if on:
            # Alternator / DC-DC converter charges at its set point, hardest just after start.
            lv.voltage_v = _relax(lv.voltage_v, lv.charge_v, h, 20.0)
            lv.current_a = 1.0 + 20.0 * math.exp(-since / 120.0)
        else:
            # Surface charge fades to the resting voltage; control units fall asleep.
            rest_v = 12.65 - 0.25 * min(1.0, since / (14 * 86_400.0))
            lv.voltage_v = _relax(lv.voltage_v, rest_v, h, 900.0)
            lv.current_a = -(0.03 + 2.5 * math.exp(-since / 300.0))

    def _park(self, h: float) -> None:
        self._t_s += h
        ambient = self._ambient_c(self._t_s)
        engine, battery, charging, tank = self.engine, self.battery, self.charging, self.tank
        if engine is not None:
            engine.coolant_c = _relax(engine.coolant_c, ambient, h, 2700.0)
            engine.oil_c = _relax(engine.oil_c, ambient, h, 3600.0)
        if tank is not None and tank.refuelling:
            tank.level_l = min(tank.capacity_l, tank.level_l + REFUEL_L_PER_S * h)
            if tank.level_l >= tank.capacity_l:
                tank.refuelling = False
                self._session_ended()
        if battery is not None:
            battery.power_w = 0.0
            target = ambient
            if charging is not None and charging.charging:
                self._charge(battery, charging, h)
                target = min(max(ambient + 8.0 + battery.power_w / 5000.0, 20.0), 40.0)
            battery.temp_c = _relax(battery.temp_c, target, h, 1800.0)
        self.cabin.temp_c = _relax(self.cabin.temp_c, ambient, h, 1200.0)
        k = math.exp(-h / 1800.0)
        for wheel in self.wheels:
            wheel.temp_c = ambient + (wheel.temp_c - ambient) * k
        self._update_lv(charging is not None and charging.charging, h)

    def _charge(self, battery: TractionBattery, charging: Charging, h: float) -> None:
        power = self._charge_power_w(battery, charging)
        capacity_kwh = battery.capacity_kwh * battery.soh_pct / 100.0
        battery.soc = min(battery.soc + power * h / 3.6e6 / capacity_kwh, 1.0)
        battery.power_w = power
        if battery.soc * 100.0 >= charging.limit_pct:
            battery.soc = charging.limit_pct / 100.0
            battery.power_w = 0.0
            battery.depleting = True
            charging.charging = False
            self._emit(EventType.CHARGING_END)
            self._session_ended()

    @staticmethod
    def _charge_power_w(battery: TractionBattery, charging: Charging) -> float:
        # CC-CV: full power up to 80 % (DC) / 95 % (AC), then tapering towards 20 %.
        knee = 0.8 if charging.max_power_w > 22_000.0 else 0.95
        taper = (
            1.0 if battery.soc <= knee else max(0.2, 1.0 - 0.8 * (battery.soc - knee) / (1 - knee))
        )
        return charging.session_power_w * CHARGE_EFFICIENCY * taper

    # ------------------------------------------------------------------ signals

    def _altitude_m(self) -> float:
        # Gentle smooth terrain around the city's mean altitude; deterministic in position.
        m = self.motion
        return self.city.altitude_m + 12.0 * math.sin(m.east_km / 2.3) * math.cos(m.north_km / 3.1)

    def read_signals(self) -> dict[str, SignalValue]:
        """Every catalogue signal of this car's powertrain, rounded to wire resolution."""
        numbers: dict[str, float] = {}
        states: dict[str, bool | str] = {}
        self._read_motion(numbers, states)
        self._read_powertrain(numbers, states)
        self._read_chassis(numbers, states)
        out: dict[str, SignalValue] = {}
        for fmt in self._formats:
            name = fmt.name
            if fmt.kind == _AS_IS:
                out[name] = states[name]
                continue
            # Clamp as a real sensor saturates at the end of its range.
            value = min(max(numbers[name], fmt.lo), fmt.hi)
            if fmt.kind == _INT:
                out[name] = round(value)
            else:
                out[name] = round(value, fmt.decimals) + 0.0  # "+ 0.0" turns -0.0 into 0.0
        return out

    def _read_motion(self, numbers: dict[str, float], states: dict[str, bool | str]) -> None:
        m = self.motion
        lat, lon = self.city.to_geo(m.east_km, m.north_km)
        speed_kmh = m.speed_mps * 3.6
        numbers[f"{_LOC}.Latitude"] = lat
        numbers[f"{_LOC}.Longitude"] = lon
        numbers[f"{_LOC}.Heading"] = m.heading_deg
        numbers[f"{_LOC}.Altitude"] = self._altitude_m()
        numbers["Vehicle.Speed"] = speed_kmh
        numbers["Vehicle.TraveledDistance"] = m.odometer_km
        # Consistent with the rounded Speed: moving iff the reported speed is not 0.0.
        states["Vehicle.IsMoving"] = speed_kmh >= 0.05
        numbers["Vehicle.Acceleration.Longitudinal"] = m.accel_mps2
        ambient = self._ambient_c(self._t_s)
        numbers["Vehicle.Exterior.AirTemperature"] = ambient + self._sensor_offset_c
        numbers["Vehicle.Cabin.HVAC.AmbientAirTemperature"] = self.cabin.temp_c
        numbers["Vehicle.Powertrain.Transmission.CurrentGear"] = float(self._gear)
        lv = self.lv_battery
        numbers["Vehicle.LowVoltageBattery.CurrentVoltage"] = lv.voltage_v
        numbers["Vehicle.LowVoltageBattery.CurrentCurrent"] = lv.current_a

    def _read_powertrain(self, numbers: dict[str, float], states: dict[str, bool | str]) -> None:
        total_range_m = 0.0
        engine, tank, battery, charging = self.engine, self.tank, self.battery, self.charging
        if engine is not None and tank is not None:
            fuel_range_m = tank.level_l / tank.avg_l_per_km * 1000.0
            total_range_m += fuel_range_m
            numbers[f"{_FS}.RelativeLevel"] = tank.level_l / tank.capacity_l * 100.0
            numbers[f"{_FS}.Range"] = fuel_range_m
            numbers[f"{_FS}.InstantConsumption"] = tank.instant_l_per_100km
            numbers[f"{_CE}.Speed"] = engine.rpm
            states[f"{_CE}.IsRunning"] = engine.running
            numbers[f"{_CE}.EngineCoolant.Temperature"] = engine.coolant_c
            numbers[f"{_CE}.EngineOil.Temperature"] = engine.oil_c
            states[f"{_CE}.EngineOil.Level"] = engine.oil_level
        if battery is not None:
            numbers[f"{_TB}.StateOfCharge.Current"] = battery.soc * 100.0
            numbers[f"{_TB}.StateOfHealth"] = battery.soh_pct
            # Open-circuit voltage rises with SoC; current through the internal resistance
            # lifts it while charging and sags it under load.
            ocv = battery.nominal_v * (0.86 + 0.24 * battery.soc)
            resistance = 0.3 if battery.nominal_v < 300.0 else 0.08
            numbers[f"{_TB}.CurrentVoltage"] = ocv + battery.power_w / ocv * resistance
            numbers[f"{_TB}.CurrentPower"] = battery.power_w
            numbers[f"{_TB}.Temperature.Average"] = battery.temp_c
        if battery is not None and charging is not None:
            energy_kwh = battery.soc * battery.capacity_kwh * battery.soh_pct / 100.0
            battery_range_m = energy_kwh / battery.avg_kwh_per_km * 1000.0
            total_range_m += battery_range_m
            numbers[f"{_TB}.Range"] = battery_range_m
            self._read_charging(battery, charging, numbers, states)
        numbers["Vehicle.Powertrain.Range"] = total_range_m

    def _read_charging(
        self,
        battery: TractionBattery,
        charging: Charging,
        numbers: dict[str, float],
        states: dict[str, bool | str],
    ) -> None:
        states[f"{_CH}.IsCharging"] = charging.charging
        states[f"{_CH}.IsChargingCableConnected"] = charging.cable_connected
        numbers[f"{_CH}.ChargeLimit"] = float(charging.limit_pct)
        rate_kmh = time_s = 0.0
        if charging.charging:
            power_w = self._charge_power_w(battery, charging)
            rate_kmh = power_w / 1000.0 / battery.avg_kwh_per_km
            missing_kwh = (charging.limit_pct / 100.0 - battery.soc) * battery.capacity_kwh
            time_s = max(0.0, missing_kwh * battery.soh_pct / 100.0 * 3.6e6 / power_w)
        numbers[f"{_CH}.ChargeRate"] = rate_kmh
        numbers[f"{_CH}.TimeToComplete"] = time_s

    def _read_chassis(self, numbers: dict[str, float], states: dict[str, bool | str]) -> None:
        for wheel, (pressure, temperature, pad) in zip(self.wheels, _WHEEL_NAMES, strict=True):
            # Ideal gas at constant volume: absolute pressure scales with absolute temperature.
            absolute = (wheel.cold_kpa + ATMOSPHERE_KPA) * (
                (wheel.temp_c + 273.15) / (TIRE_REFERENCE_C + 273.15)
            )
            numbers[pressure] = absolute - ATMOSPHERE_KPA
            numbers[temperature] = wheel.temp_c
            numbers[pad] = wheel.pad_wear_pct
        distance_km = self.service.due_odometer_km - self.motion.odometer_km
        time_s = (self.service.due_ms - self.now_ms) / 1000.0
        numbers["Vehicle.Service.DistanceToService"] = distance_km
        numbers["Vehicle.Service.TimeToService"] = time_s
        states["Vehicle.Service.IsServiceDue"] = (
            distance_km <= SERVICE_DUE_KM or time_s <= SERVICE_DUE_S
        )
