"""Where a car tops up on the way: the nearest fuel or charging station, when the next trip
would otherwise leave it (nearly) empty.

The stations are the shared place data (:mod:`protocol.places`) of the city, in the city's
local km plane; a city without place data has no stations (the vehicle model then refuels
where the car stands).
"""

from __future__ import annotations

import functools
import math

from protocol.catalogue import Powertrain
from protocol.places import InvalidPlaceError, Place, PlaceKind, load_places
from simulator.city import City
from simulator.components import CarComponents

#: A trip is longer than the straight line (streets) and uses more than the average.
ROAD_FACTOR = 1.35
RESERVE_FACTOR = 1.2
REFUEL_RESERVE = 0.12  # of the tank: fill up rather than arrive with less
CHARGE_RESERVE_SOC = 0.10
FAST_CHARGER_KW = 50.0


@functools.cache
def _places(city: City) -> tuple[Place, ...]:
    try:
        return load_places(city.name.lower())
    except InvalidPlaceError:
        return ()


@functools.cache
def _stations(city: City, kind: PlaceKind) -> tuple[tuple[float, float], ...]:
    # Public charging detours go to fast chargers: nobody waits hours at an AC post.
    return tuple(
        city.to_local(p.lat, p.lon)
        for p in _places(city)
        if p.kind is kind
        and (kind is not PlaceKind.CHARGING_STATION or (p.max_power_kw or 0.0) >= FAST_CHARGER_KW)
    )


class EnergyStops:
    """The stations of one city (shared, cached) and the decision to stop at one."""

    __slots__ = ("_charge", "_fuel", "places")

    def __init__(self, city: City) -> None:
        self.places = _places(city)
        self._fuel = _stations(city, PlaceKind.FUEL_STATION)
        self._charge = _stations(city, PlaceKind.CHARGING_STATION)

    def __bool__(self) -> bool:
        return bool(self._fuel)

    def needed(self, car: CarComponents, dest: tuple[float, float]) -> tuple[float, float] | None:
        """The station to drive to before ``dest``, or None if the car can make the trip."""
        m = car.motion
        km = math.hypot(dest[0] - m.east_km, dest[1] - m.north_km) * ROAD_FACTOR + 2.0
        tank, battery = car.tank, car.battery
        if tank is not None:
            need_l = km * tank.avg_l_per_km * RESERVE_FACTOR
            if tank.level_l - need_l < REFUEL_RESERVE * tank.capacity_l:
                return self._nearest(self._fuel, m.east_km, m.north_km)
        if battery is not None and car.profile.powertrain is Powertrain.BEV:
            usable_kwh = (battery.soc - CHARGE_RESERVE_SOC) * battery.capacity_kwh
            usable_kwh *= battery.soh_pct / 100.0
            need_kwh = km * battery.avg_kwh_per_km * RESERVE_FACTOR
            if need_kwh > usable_kwh:
                return self._nearest(self._charge, m.east_km, m.north_km)
        return None

    @staticmethod
    def _nearest(
        stations: tuple[tuple[float, float], ...], east: float, north: float
    ) -> tuple[float, float] | None:
        if not stations:
            return None
        return min(stations, key=lambda s: (s[0] - east) ** 2 + (s[1] - north) ** 2)
