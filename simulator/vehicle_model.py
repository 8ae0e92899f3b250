"""The physics of one simulated car: where it is, how fast it goes, what its components read.

The model is a pure state machine: :meth:`VehicleModel.step` advances it to a time the caller
passes in, :meth:`VehicleModel.read_signals` reads every catalogue signal of the car's
powertrain. No I/O and no clock, so a fleet can be simulated faster than real time and a test
can replay it exactly (same profile, seed and step times -> same signals).

The car alternates between a trip (accelerate, cruise with noise, stop at traffic lights, slow
for corners, brake to a stop at the destination) and a short dwell, refuelling or charging
when it ran low. This module owns that life cycle and the model clock; the physics is in
small modules it calls in a fixed order:

- :mod:`simulator.components`: each component's state (:class:`Engine`, :class:`FuelTank`,
  :class:`TractionBattery`, ...), which later layers (daily routines, fault injection with
  ground truth) can read and perturb;
- :mod:`simulator.initial_components`: the state a new car starts in;
- :mod:`simulator.route`: the trip and the driver's speed along it;
- :mod:`simulator.energy`: road load, engine / battery / brake power split, consumption;
- :mod:`simulator.thermal`: component temperatures;
- :mod:`simulator.signal_readout`: component state -> catalogue signals on the wire.

Motion happens in the city's local east/north plane in km (see :mod:`simulator.city`), so one
step is a few dozen float operations; 2,000 cars at 1 Hz cost a small fraction of a CPU.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from protocol.catalogue import Powertrain
from protocol.messages import EventType
from simulator.city import MUNICH, City
from simulator.components import (
    Cabin,
    Charging,
    LowVoltageBattery,
    Motion,
    TractionBattery,
    Transmission,
    cranking_voltage,
    update_lv_battery,
)
from simulator.energy import aux_load_w, charge_power_w, propel, road_load_w
from simulator.energy_stops import EnergyStops
from simulator.faults import FaultSpec
from simulator.fleet import VehicleProfile
from simulator.ground_truth import GroundTruthRecord
from simulator.initial_components import new_battery, new_engine, new_service, new_wheels
from simulator.route import Route, advance_along, next_speed, next_stop_km, plan_route
from simulator.routine import Leg, Purpose, RoutineCursor, make_owner
from simulator.signal_readout import SignalReadout, SignalValue
from simulator.thermal import cool_while_parked, warm_while_driving
from simulator.wear import WearModel

# A 1 s sub-step keeps the braking curves accurate to well under a metre.
MAX_SUBSTEP_S = 1.0
#: A longer gap between two steps is treated as "the simulator was paused": the car pulls over
#: where it is and stays parked for the gap instead of replaying hours of driving.
MAX_CATCH_UP_S = 600.0
PARKED_CHUNK_S = 60.0  # charging/refuelling integrate in chunks (taper, limits)
REFUEL_L_PER_S = 0.6
REFUEL_BELOW = 0.10
#: A car whose routine trip began less than this before the start is put on the road.
INITIAL_TRIP_WINDOW_MS = 20 * 60_000
HOME_CHARGER_W = 11_000.0  # three-phase 16 A wallbox
HOME_PLUG_BELOW = 0.8  # BEV owners plug in at home below 80 % of their charge limit
DWELL_S = (20.0, 240.0)
UNPLUG_DELAY_S = (60.0, 240.0)
EVENT_BUFFER = 256  # the outer layer drains events every step; this only bounds a stalled one
#: Slow wear and faults (days-long processes) are integrated in chunks of this much model time;
#: the time-linear ones interpolate their threshold crossing exactly inside a chunk.
WEAR_TICK_S = 60.0

_MS_PER_YEAR = 365.2425 * 86_400_000


class Phase(Enum):
    DRIVING = "driving"  # on a trip, including waits at traffic lights
    PARKED = "parked"


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """Something discrete that happened, for the outer layer to publish as an event message."""

    ts_ms: int
    type: EventType
    code: str | None = None  # DTC events: the code ...
    active: bool | None = None  # ... and whether it was set (True) or cleared (False)


class VehicleModel:
    """One car, stepped by the caller. See the module docstring."""

    def __init__(
        self,
        profile: VehicleProfile,
        rng: random.Random,
        start_ms: int,
        *,
        city: City = MUNICH,
        faults: Sequence[FaultSpec] = (),
        max_substep_s: float = MAX_SUBSTEP_S,
    ) -> None:
        """``faults``: the fault plan; entries for other VINs are ignored, so the whole fleet's
        plan can be passed. ``max_substep_s``: longest driving sub-step; coarser than 1 s is
        cheaper for backfill at some cost in braking-curve accuracy."""
        if not 0.0 < max_substep_s <= 30.0:
            raise ValueError(f"max_substep_s must be in (0, 30], not {max_substep_s}")
        self.profile = profile
        self._max_substep_s = max_substep_s
        self.city = city
        self._rng = rng
        self._start_ms = start_ms
        self._t_s = 0.0  # model time: seconds since start_ms
        self._readout = SignalReadout(profile.powertrain, city)
        self.events: deque[ModelEvent] = deque(maxlen=EVENT_BUFFER)
        self.phase = Phase.PARKED
        self.route: Route | None = None
        self._depart_s = 0.0
        # HEVs use an e-CVT, BEVs a single-speed reduction gear.
        self.transmission = Transmission(profile.powertrain in (Powertrain.ICE, Powertrain.PHEV))
        ambient = city.air_temperature_c(start_ms)
        # Per-car character: driving style, sensor offsets, owner settings. The order of the
        # draws is part of the car's identity: same seed, same car.
        self._accel_max = rng.uniform(1.5, 2.6)
        self._sensor_offset_c = rng.uniform(-0.6, 0.6)
        age_years = max(0.0, 1970.0 + start_ms / _MS_PER_YEAR - profile.model_year)
        age_years += rng.uniform(0.1, 1.0)
        odometer = age_years * rng.uniform(7_000.0, 20_000.0) + rng.uniform(5.0, 50.0)
        east, north = city.to_local(profile.home_lat, profile.home_lon)
        self.motion = Motion(east, north, rng.uniform(0.0, 360.0), odometer)
        self.cabin = Cabin(ambient, rng.uniform(19.5, 23.0))
        self.lv_battery = LowVoltageBattery(12.6, -0.05, rng.uniform(14.0, 14.4))
        self.engine, self.tank = new_engine(profile, rng, ambient)
        self.battery, self.charging = new_battery(profile, rng, ambient, age_years)
        self.aux_load_w = aux_load_w(profile)
        regen_braking = self.battery is not None and profile.is_plug_in
        self.wheels = new_wheels(rng, ambient, odometer, regen_braking=regen_braking)
        self.service = new_service(profile, rng, odometer, start_ms)
        vin = str(profile.vin)
        self._wear = WearModel([f for f in faults if f.vin == vin], self)
        self._wear_t_s = 0.0
        self._wear_odometer_km = odometer
        self._overheat_fault = self._wear.overheat_fault
        self.owner = make_owner(
            rng.getrandbits(62), (east, north), city, plug_in=profile.is_plug_in
        )
        self._stops = EnergyStops(city)
        self._routine = RoutineCursor(self.owner, city, self._stops.places)
        self._next_leg: Leg | None = None
        self._detour = False  # driving to (or parked at) a fuel or charging station
        self._place_at_start()

    # ------------------------------------------------------------------ time

    @property
    def now_ms(self) -> int:
        return self._start_ms + round(self._t_s * 1000.0)

    @property
    def next_departure_ms(self) -> int | None:
        """When the parked car will set off next; None while driving or while a refuelling /
        charging session at a station holds it. Lets a backfill skip the parked time."""
        if self.phase is Phase.DRIVING or self._depart_s == math.inf:
            return None
        return self._ms(self._depart_s)

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
                n = math.ceil(remaining / self._max_substep_s - 1e-9)
                self._drive(remaining / n)
            elif self._depart_s > self._t_s + 1e-9:
                h = min(remaining, self._depart_s - self._t_s)
                self._park(min(h, PARKED_CHUNK_S) if self._in_session() else h)
            else:
                self._start_trip()
        self._t_s = t_end
        if t_end - self._wear_t_s >= WEAR_TICK_S:
            self._advance_wear()

    def _advance_wear(self) -> None:
        wear, odometer = self._wear, self.motion.odometer_km
        t0_ms = self._start_ms + round(self._wear_t_s * 1000.0)
        wear.advance(self, t0_ms, self.now_ms, odometer - self._wear_odometer_km)
        self._wear_t_s, self._wear_odometer_km = self._t_s, odometer
        self._flush_dtcs()

    def _flush_dtcs(self) -> None:
        for ts_ms, code, active in self._wear.dtcs:
            self.events.append(ModelEvent(ts_ms, EventType.DTC, code, active))
        self._wear.dtcs.clear()

    def drain_ground_truth(self) -> list[GroundTruthRecord]:
        """Ground-truth records (fault onsets and failures) since the last call, oldest first."""
        records = self._wear.records[:]
        self._wear.records.clear()
        return records

    def _in_session(self) -> bool:
        return (self.tank is not None and self.tank.refuelling) or (
            self.charging is not None and self.charging.charging
        )

    def _pull_over(self, t_end: float) -> None:
        # A long gap means the simulator was paused; the car is parked for it, so the gap adds
        # neither distance nor energy use. Trips missed meanwhile are skipped.
        if self.phase is Phase.DRIVING:
            self._end_trip(arrived=False)
        if self._depart_s < t_end:
            self._schedule(t_end + self._rng.uniform(0.0, 30.0))

    def drain_events(self) -> list[ModelEvent]:
        """Events since the last call, oldest first."""
        events = list(self.events)
        self.events.clear()
        return events

    def _emit(self, event_type: EventType) -> None:
        self.events.append(ModelEvent(self.now_ms, event_type))

    # ------------------------------------------------------------------ trips

    def _place_at_start(self) -> None:
        """Put the car where its routine has it at ``start_ms``: parked after its last trip,
        or on the way if that trip began only minutes ago."""
        previous, last = self._routine.last_leg_before(self._start_ms)
        m = self.motion
        if last is not None and self._start_ms - last.depart_ms < INITIAL_TRIP_WINDOW_MS:
            m.east_km, m.north_km = previous.dest if previous is not None else self.owner.home
            self._routine.last_key = previous.key if previous is not None else (0, -1)
            self._next_leg = last
            self._start_trip(initial=True)
            return
        if last is not None:
            m.east_km, m.north_km = last.dest
            self._routine.last_key = last.key
        self._schedule(0.0)

    def _schedule(self, not_before_s: float) -> None:
        """Depart for the routine's next trip, at its time but not before ``not_before_s``."""
        leg = self._next_leg = self._routine.next_leg(self._ms(not_before_s))
        self._depart_s = max((leg.depart_ms - self._start_ms) / 1000.0, not_before_s)

    def _ms(self, t_s: float) -> int:
        return self._start_ms + round(t_s * 1000.0)

    def _start_trip(self, *, initial: bool = False) -> None:
        charging = self.charging
        if charging is not None:
            if charging.charging:  # unplugged before the charge was complete
                self._emit(EventType.CHARGING_END)
            charging.cable_connected = charging.charging = False
            charging.session_power_w = 0.0
        leg = self._next_leg
        assert leg is not None
        station = None if initial else self._stops.needed(self, leg.dest)
        self._detour = station is not None
        if station is None:
            self._routine.last_key = leg.key
        dest = leg.dest if station is None else station
        route = self.route = plan_route(self._rng, self.city, self.motion, dest)
        self.motion.heading_deg = route.headings_deg[0]
        self.phase = Phase.DRIVING
        lv = self.lv_battery
        lv.switched_s = self._t_s
        if self.engine is not None and not initial:
            # The sample right after ignition shows the cranking dip.
            ambient = self._ambient_c(self._t_s)
            lv.voltage_v = cranking_voltage(lv, ambient, self.profile.powertrain is Powertrain.ICE)
        if initial:
            # A car that set off minutes before the simulation started is mid-journey.
            self.motion.speed_mps = self._rng.uniform(0.0, route.cruise_mps)
            if self.engine is not None:
                warm = self._rng.random()
                self.engine.coolant_c += (90.0 - self.engine.coolant_c) * warm
                self.engine.oil_c += (95.0 - self.engine.oil_c) * warm * 0.8
        self._emit(EventType.TRIP_START)

    def _end_trip(self, *, arrived: bool = True) -> None:
        t = self._t_s
        self.motion.speed_mps = self.motion.accel_mps2 = 0.0
        self.phase = Phase.PARKED
        self.route = None
        self.lv_battery.switched_s = t
        if self.engine is not None:
            self.engine.running = False
            self.engine.rpm = 0.0
        if self.battery is not None:
            self.battery.power_w = 0.0
        self.transmission.gear = 0
        self._emit(EventType.TRIP_END)
        tank, battery, charging = self.tank, self.battery, self.charging
        if arrived and self._detour:
            # At the station: fill up, or fast-charge; the trip the detour was for follows.
            self._depart_s = math.inf
            if charging is not None and self.profile.powertrain is Powertrain.BEV:
                self._plug_in(charging, charging.max_power_w)
            elif tank is not None:
                tank.refuelling = True
            return
        self._detour = False
        done = self._next_leg
        self._schedule(t + self._rng.uniform(*DWELL_S))
        if tank is not None and tank.level_l < REFUEL_BELOW * tank.capacity_l and not self._stops:
            tank.refuelling = True  # no station data for this city: fill up where it stands
            self._depart_s = math.inf
        at_home = arrived and done is not None and done.purpose is Purpose.HOME
        if charging is not None and battery is not None and at_home and self.owner.home_charger:
            plug_below = 1.0 if self.profile.powertrain is Powertrain.PHEV else HOME_PLUG_BELOW
            if battery.soc < plug_below * charging.limit_pct / 100.0:
                self._plug_in(charging, min(charging.max_power_w, HOME_CHARGER_W))

    def _plug_in(self, charging: Charging, power_w: float) -> None:
        charging.cable_connected = charging.charging = True
        charging.session_power_w = power_w
        if self.battery is not None:
            self.battery.power_w = charge_power_w(self.battery, charging)
        self._emit(EventType.CHARGING_START)

    def _session_ended(self) -> None:
        # A station session blocks the departure until done; a home charge does not.
        if not self._in_session() and self._depart_s == math.inf:
            self._detour = False
            self._depart_s = self._t_s + self._rng.uniform(*UNPLUG_DELAY_S)

    # ------------------------------------------------------------------ driving and parking

    def _drive(self, h: float) -> None:
        m, route = self.motion, self.route
        assert route is not None
        v = m.speed_mps
        arrived = False
        if route.hold_s > 0.0:
            route.hold_s = max(0.0, route.hold_s - h)
            v_new = ds_m = 0.0
        else:
            v_new = next_speed(route, v, h, self._rng, self._accel_max)
            ds_m = 0.5 * (v + v_new) * h
            d_stop_m = max(0.0, (min(route.next_stop_km, route.length_km) - route.done_km) * 1e3)
            if ds_m >= d_stop_m - 0.05:
                ds_m, v_new, arrived = d_stop_m, 0.0, True
            advance_along(route, m, ds_m / 1000.0)
        accel = (v_new - v) / h
        m.speed_mps, m.accel_mps2 = v_new, accel
        ds_km = ds_m / 1000.0
        m.odometer_km += ds_km
        self._t_s += h
        v_avg = 0.5 * (v + v_new)
        p = self.profile
        wheel_w = road_load_w(p.mass_kg, p.drag_area_m2, v_avg, accel)
        ambient = self._ambient_c(self._t_s)
        propel(self, wheel_w, v_avg, ds_km, h)
        warm_while_driving(self, v_new, h, ambient)
        if self._overheat_fault:
            self._wear.check_coolant(self, self.now_ms)
        lv = self.lv_battery
        update_lv_battery(lv, True, self._t_s - lv.switched_s, h)
        if arrived:
            if route.done_km >= route.length_km - 1e-9:
                self._end_trip()
            else:  # a red light or junction: wait, then look for the next one
                route.hold_s = self._rng.uniform(5.0, 45.0)
                route.next_stop_km = next_stop_km(self._rng, route.done_km, route.stop_spacing_km)

    def _park(self, h: float) -> None:
        self._t_s += h
        ambient = self._ambient_c(self._t_s)
        battery, charging, tank = self.battery, self.charging, self.tank
        if tank is not None and tank.refuelling:
            tank.level_l = min(tank.capacity_l, tank.level_l + REFUEL_L_PER_S * h)
            if tank.level_l >= tank.capacity_l:
                tank.refuelling = False
                self._session_ended()
        charged = False
        if battery is not None:
            battery.power_w = 0.0
            if charging is not None and charging.charging:
                charged = True
                self._charge(battery, charging, h)
        cool_while_parked(self, h, ambient, charged)
        lv = self.lv_battery
        on = charging is not None and charging.charging  # the charger keeps the car awake
        update_lv_battery(lv, on, self._t_s - lv.switched_s, h)

    def _charge(self, battery: TractionBattery, charging: Charging, h: float) -> None:
        power = charge_power_w(battery, charging)
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

    # ------------------------------------------------------------------ signals

    def read_signals(self) -> dict[str, SignalValue]:
        """Every catalogue signal of this car's powertrain, rounded to wire resolution."""
        air_c = self._ambient_c(self._t_s) + self._sensor_offset_c
        return self._readout.read(self, air_c, self.now_ms)
