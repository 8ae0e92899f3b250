"""Temperatures of a car's engine, traction battery, cabin and tyres.

Every temperature follows its target with a first-order lag (:func:`simulator.components.relax`),
with a time constant per component: while driving the engine's thermostat, the battery's load,
the climate control and tyre flexing set the targets; while parked everything drifts to the
ambient air, except a battery that is being charged.
"""

from __future__ import annotations

import math

from simulator.components import CarComponents, relax


def warm_while_driving(car: CarComponents, v: float, h: float, ambient: float) -> None:
    """Advance every temperature by ``h`` s of driving at ``v`` m/s."""
    engine, battery = car.engine, car.battery
    if engine is not None:
        if engine.running:
            # Thermostat holds the coolant near 90 C; oil runs a little hotter and lags.
            load = min(1.0, engine.rpm / 5000.0)
            # A failing thermostat / pump lets the coolant run hotter, most of all at load.
            target = 88.0 + 5.0 * load + engine.overheat_c * min(1.0, 0.5 + load)
            engine.coolant_c = relax(engine.coolant_c, target, h, 240.0)
            engine.oil_c = relax(engine.oil_c, 95.0 + 10.0 * load, h, 600.0)
        else:  # hybrid in electric mode
            engine.coolant_c = relax(engine.coolant_c, ambient, h, 2700.0)
            engine.oil_c = relax(engine.oil_c, ambient, h, 3600.0)
    if battery is not None:
        target = ambient + 3.0 + abs(battery.power_w) / 3000.0
        if car.charging is not None:  # liquid-cooled pack with thermal management
            target = min(max(target, 12.0), 38.0)
        battery.temp_c = relax(battery.temp_c, target, h, 1800.0)
    car.cabin.temp_c = relax(car.cabin.temp_c, car.cabin.setpoint_c, h, 300.0)
    # Tyres warm with flexing, roughly with speed.
    tyre_target = ambient + 3.0 + v * 0.9
    k = math.exp(-h / 600.0)
    for wheel in car.wheels:
        wheel.temp_c = tyre_target + (wheel.temp_c - tyre_target) * k


def cool_while_parked(car: CarComponents, h: float, ambient: float, charged: bool) -> None:
    """Advance every temperature by ``h`` s parked; ``charged``: the battery was charging."""
    engine, battery = car.engine, car.battery
    if engine is not None:
        engine.coolant_c = relax(engine.coolant_c, ambient, h, 2700.0)
        engine.oil_c = relax(engine.oil_c, ambient, h, 3600.0)
    if battery is not None:
        target = ambient
        if charged:
            target = min(max(ambient + 8.0 + battery.power_w / 5000.0, 20.0), 40.0)
        battery.temp_c = relax(battery.temp_c, target, h, 1800.0)
    car.cabin.temp_c = relax(car.cabin.temp_c, ambient, h, 1200.0)
    k = math.exp(-h / 1800.0)
    for wheel in car.wheels:
        wheel.temp_c = ambient + (wheel.temp_c - ambient) * k
