"""The state of a simulated car's components, one small mutable object per component.

Each component (:class:`Engine`, :class:`FuelTank`, :class:`TractionBattery`, ...) is plain
data, so that later layers (daily routines, fault injection with ground truth) can read and
perturb it without going through the physics. :class:`CarComponents` is the view of a whole
car that the physics modules (:mod:`simulator.energy`, :mod:`simulator.thermal`,
:mod:`simulator.signal_readout`) work on; :class:`simulator.vehicle_model.VehicleModel`
satisfies it. The few helpers here are the physics of one component on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from simulator.fleet import VehicleProfile


@dataclass(slots=True)
class Motion:
    east_km: float
    north_km: float
    heading_deg: float
    odometer_km: float
    speed_mps: float = 0.0
    accel_mps2: float = 0.0


@dataclass(slots=True)
class Transmission:
    #: Automatic gearbox with discrete gears (ICE, PHEV); otherwise a single-speed reduction
    #: gear (BEV) or an e-CVT (HEV), reported as gear 1 while driving.
    stepped: bool
    gear: int = 0  # 0 = park / neutral


@dataclass(slots=True)
class Engine:
    efficiency: float  # indicated efficiency at part load, calibrated from the profile
    coolant_c: float
    oil_c: float
    running: bool = False
    rpm: float = 0.0
    oil_level: str = "NORMAL"
    #: Failing thermostat or water pump: how far (C) the coolant's target at load is raised.
    overheat_c: float = 0.0


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
    #: Loss of resting voltage (V) from sulphation / a failing cell; also deepens the
    #: cranking dip. 0 for a healthy battery.
    wear_v: float = 0.0


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


class CarComponents(Protocol):
    """A car as its physics sees it: the profile and every component's state."""

    profile: VehicleProfile
    motion: Motion
    transmission: Transmission
    engine: Engine | None
    tank: FuelTank | None
    battery: TractionBattery | None
    charging: Charging | None  # None unless the car is a plug-in
    lv_battery: LowVoltageBattery
    wheels: tuple[Wheel, ...]
    service: Service
    cabin: Cabin
    #: Electric auxiliaries (HVAC, 12 V via the DC-DC converter) drawn from the traction
    #: battery while the engine is off; calibrated from the profile.
    aux_load_w: float


def relax(value: float, target: float, dt_s: float, tau_s: float) -> float:
    """First-order lag: exact solution of dT/dt = (target - T) / tau over dt."""
    return target + (value - target) * math.exp(-dt_s / tau_s)


def cranking_voltage(lv: LowVoltageBattery, ambient_c: float, starter: bool) -> float:
    """Lowest terminal voltage while the engine starts: the starter draws a few hundred amps
    through the battery's internal resistance, which rises with cold and with wear. A hybrid
    starts its engine with the traction motor, so its 12 V only sees the wake-up load."""
    if not starter:
        return 11.9 - lv.wear_v
    cold = 0.03 * max(0.0, 10.0 - ambient_c)
    return max(6.0, 10.4 - cold - 3.0 * lv.wear_v)


def update_lv_battery(lv: LowVoltageBattery, on: bool, since_s: float, h: float) -> None:
    """Advance the 12 V battery by ``h`` s; ``since_s`` is the time since the car was switched
    on or off."""
    if on:
        # Alternator / DC-DC converter charges at its set point, hardest just after start.
        lv.voltage_v = relax(lv.voltage_v, lv.charge_v, h, 20.0)
        lv.current_a = 1.0 + 20.0 * math.exp(-since_s / 120.0)
    else:
        # Surface charge fades to the resting voltage; control units fall asleep.
        rest_v = 12.65 - lv.wear_v - 0.25 * min(1.0, since_s / (14 * 86_400.0))
        lv.voltage_v = relax(lv.voltage_v, rest_v, h, 900.0)
        lv.current_a = -(0.03 + 2.5 * math.exp(-since_s / 300.0))
