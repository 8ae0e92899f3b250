"""What a car's sensors report: every catalogue signal of its powertrain, at wire resolution.

:class:`SignalReadout` turns the component state (:mod:`simulator.components`) into VSS signal
values (derived ones too: ranges, battery voltage under load, tyre pressure at temperature,
time to complete a charge) and puts them on the wire: clamped to the catalogue range as a real
sensor saturates, rounded to a resolution every consumer is content with, typed as the
catalogue says. The per-powertrain tables are built once and shared by the whole fleet.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from protocol.catalogue import FLOAT_TYPES, Datatype, Powertrain, signals_for
from simulator.city import City
from simulator.components import CarComponents, Charging, TractionBattery
from simulator.energy import charge_power_w

SignalValue = bool | int | float | str

SERVICE_DUE_KM = 1000.0  # VSS IsServiceDue: "service needed now or in the near future"
SERVICE_DUE_S = 30 * 86_400
TIRE_REFERENCE_C = 15.0  # cold pressure is what the owner set at this temperature
ATMOSPHERE_KPA = 101.3

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

_WHEEL_NAMES = tuple(
    (
        f"Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Tire.Pressure",
        f"Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Tire.Temperature",
        f"Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Brake.PadWear",
    )
    for row in (1, 2)
    for side in ("Left", "Right")
)


@dataclass(frozen=True, slots=True)
class WireFormat:
    """How a car's signals are put on the wire, split by kind (precomputed per powertrain)."""

    floats: tuple[tuple[str, int, float, float], ...]  # name, decimals, min, max
    ints: tuple[tuple[str, float, float], ...]  # name, min, max
    as_is: tuple[str, ...]  # booleans and strings


@functools.cache
def wire_format(powertrain: Powertrain) -> WireFormat:
    # Cached per powertrain: the catalogue is immutable and 2,000 cars share four tables.
    floats, ints, as_is = [], [], []
    for spec in signals_for(powertrain):
        if spec.datatype in (Datatype.BOOLEAN, Datatype.STRING):
            as_is.append(spec.name)
            continue
        assert spec.min is not None and spec.max is not None  # numeric specs have a range
        if spec.datatype in FLOAT_TYPES:
            floats.append((spec.name, _DECIMALS.get(spec.name, 1), spec.min, spec.max))
        else:
            ints.append((spec.name, spec.min, spec.max))
    return WireFormat(tuple(floats), tuple(ints), tuple(as_is))


class SignalReadout:
    """Reads one car's signals; built once per car."""

    def __init__(self, powertrain: Powertrain, city: City) -> None:
        self._wire = wire_format(powertrain)
        self._city = city

    def read(self, car: CarComponents, air_c: float, now_ms: int) -> dict[str, SignalValue]:
        """Every catalogue signal of the car, rounded to wire resolution; ``air_c`` is what the
        exterior temperature sensor measures."""
        numbers: dict[str, float] = {}
        states: dict[str, bool | str] = {}
        self._read_motion(car, air_c, numbers, states)
        _read_powertrain(car, numbers, states)
        _read_chassis(car, now_ms, numbers, states)
        out: dict[str, SignalValue] = {}
        wire = self._wire
        # Clamp as a real sensor saturates at the end of its range. (Comparisons, not min/max:
        # this loop is most of the cost of a read.)
        for name, decimals, lo, hi in wire.floats:
            value = numbers[name]
            if value < lo:
                value = lo
            elif value > hi:
                value = hi
            out[name] = round(value, decimals) + 0.0  # "+ 0.0" turns -0.0 into 0.0
        for name, lo, hi in wire.ints:
            value = numbers[name]
            if value < lo:
                value = lo
            elif value > hi:
                value = hi
            out[name] = round(value)
        for name in wire.as_is:
            out[name] = states[name]
        return out

    def _read_motion(
        self,
        car: CarComponents,
        air_c: float,
        numbers: dict[str, float],
        states: dict[str, bool | str],
    ) -> None:
        m, city = car.motion, self._city
        lat, lon = city.to_geo(m.east_km, m.north_km)
        speed_kmh = m.speed_mps * 3.6
        numbers["Vehicle.CurrentLocation.Latitude"] = lat
        numbers["Vehicle.CurrentLocation.Longitude"] = lon
        numbers["Vehicle.CurrentLocation.Heading"] = m.heading_deg
        # Gentle smooth terrain around the city's mean altitude; deterministic in position.
        relief_m = 12.0 * math.sin(m.east_km / 2.3) * math.cos(m.north_km / 3.1)
        numbers["Vehicle.CurrentLocation.Altitude"] = city.altitude_m + relief_m
        numbers["Vehicle.Speed"] = speed_kmh
        numbers["Vehicle.TraveledDistance"] = m.odometer_km
        # Consistent with the rounded Speed: moving iff the reported speed is not 0.0.
        states["Vehicle.IsMoving"] = speed_kmh >= 0.05
        numbers["Vehicle.Acceleration.Longitudinal"] = m.accel_mps2
        numbers["Vehicle.Exterior.AirTemperature"] = air_c
        numbers["Vehicle.Cabin.HVAC.AmbientAirTemperature"] = car.cabin.temp_c
        numbers["Vehicle.Powertrain.Transmission.CurrentGear"] = float(car.transmission.gear)
        lv = car.lv_battery
        numbers["Vehicle.LowVoltageBattery.CurrentVoltage"] = lv.voltage_v
        numbers["Vehicle.LowVoltageBattery.CurrentCurrent"] = lv.current_a


def _read_powertrain(
    car: CarComponents, numbers: dict[str, float], states: dict[str, bool | str]
) -> None:
    total_range_m = 0.0
    engine, tank, battery, charging = car.engine, car.tank, car.battery, car.charging
    if engine is not None and tank is not None:
        fuel_range_m = tank.level_l / tank.avg_l_per_km * 1000.0
        total_range_m += fuel_range_m
        numbers["Vehicle.Powertrain.FuelSystem.RelativeLevel"] = (
            tank.level_l / tank.capacity_l * 100.0
        )
        numbers["Vehicle.Powertrain.FuelSystem.Range"] = fuel_range_m
        numbers["Vehicle.Powertrain.FuelSystem.InstantConsumption"] = tank.instant_l_per_100km
        numbers["Vehicle.Powertrain.CombustionEngine.Speed"] = engine.rpm
        states["Vehicle.Powertrain.CombustionEngine.IsRunning"] = engine.running
        numbers["Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"] = engine.coolant_c
        numbers["Vehicle.Powertrain.CombustionEngine.EngineOil.Temperature"] = engine.oil_c
        states["Vehicle.Powertrain.CombustionEngine.EngineOil.Level"] = engine.oil_level
    if battery is not None:
        numbers["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"] = battery.soc * 100.0
        numbers["Vehicle.Powertrain.TractionBattery.StateOfHealth"] = battery.soh_pct
        # Open-circuit voltage rises with SoC; current through the internal resistance
        # lifts it while charging and sags it under load.
        ocv = battery.nominal_v * (0.86 + 0.24 * battery.soc)
        resistance = 0.3 if battery.nominal_v < 300.0 else 0.08
        numbers["Vehicle.Powertrain.TractionBattery.CurrentVoltage"] = (
            ocv + battery.power_w / ocv * resistance
        )
        numbers["Vehicle.Powertrain.TractionBattery.CurrentPower"] = battery.power_w
        numbers["Vehicle.Powertrain.TractionBattery.Temperature.Average"] = battery.temp_c
    if battery is not None and charging is not None:
        energy_kwh = battery.soc * battery.capacity_kwh * battery.soh_pct / 100.0
        battery_range_m = energy_kwh / battery.avg_kwh_per_km * 1000.0
        total_range_m += battery_range_m
        numbers["Vehicle.Powertrain.TractionBattery.Range"] = battery_range_m
        _read_charging(battery, charging, numbers, states)
    numbers["Vehicle.Powertrain.Range"] = total_range_m


def _read_charging(
    battery: TractionBattery,
    charging: Charging,
    numbers: dict[str, float],
    states: dict[str, bool | str],
) -> None:
    states["Vehicle.Powertrain.TractionBattery.Charging.IsCharging"] = charging.charging
    states["Vehicle.Powertrain.TractionBattery.Charging.IsChargingCableConnected"] = (
        charging.cable_connected
    )
    numbers["Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"] = float(charging.limit_pct)
    rate_kmh = time_s = 0.0
    if charging.charging:
        power_w = charge_power_w(battery, charging)
        rate_kmh = power_w / 1000.0 / battery.avg_kwh_per_km
        missing_kwh = (charging.limit_pct / 100.0 - battery.soc) * battery.capacity_kwh
        # Rounded up: while energy flows the charge is not complete, so never report 0.
        time_s = max(1.0, math.ceil(missing_kwh * battery.soh_pct / 100.0 * 3.6e6 / power_w))
    numbers["Vehicle.Powertrain.TractionBattery.Charging.ChargeRate"] = rate_kmh
    numbers["Vehicle.Powertrain.TractionBattery.Charging.TimeToComplete"] = time_s


def _read_chassis(
    car: CarComponents, now_ms: int, numbers: dict[str, float], states: dict[str, bool | str]
) -> None:
    for wheel, (pressure, temperature, pad) in zip(car.wheels, _WHEEL_NAMES, strict=True):
        # Ideal gas at constant volume: absolute pressure scales with absolute temperature.
        absolute = (wheel.cold_kpa + ATMOSPHERE_KPA) * (
            (wheel.temp_c + 273.15) / (TIRE_REFERENCE_C + 273.15)
        )
        numbers[pressure] = absolute - ATMOSPHERE_KPA
        numbers[temperature] = wheel.temp_c
        numbers[pad] = wheel.pad_wear_pct
    service = car.service
    distance_km = service.due_odometer_km - car.motion.odometer_km
    time_s = (service.due_ms - now_ms) / 1000.0
    numbers["Vehicle.Service.DistanceToService"] = distance_km
    numbers["Vehicle.Service.TimeToService"] = time_s
    states["Vehicle.Service.IsServiceDue"] = (
        distance_km <= SERVICE_DUE_KM or time_s <= SERVICE_DUE_S
    )
