"""The VSS signal catalogue: every signal FleetLink understands, with type, unit and range.

Signal names, datatypes and units follow COVESA VSS 4.x
(https://covesa.github.io/vehicle_signal_specification/), so a car that already speaks VSS
(KUKSA databroker, Android Automotive VHAL mappings, ...) needs no translation table, and the
unit is fixed by the name: ``Vehicle.Speed`` is always km/h and
``Vehicle.Powertrain.FuelSystem.Range`` is always metres. The wire carries bare
numbers, never a unit, so this table is the only place where units are defined.

Unknown signal names are legal on the wire and are stored, not dropped (wire contract v1): cars
are updated on their own schedule and an OEM adds signals (or VSS overlays) before the backend
learns about them; dropping them would lose data that cannot be re-read from the car.
:func:`get_signal` therefore returns ``None`` for them; their values cannot be type- or
range-checked.

Integer VSS types (``uint8`` ... ``int32``) accept a JSON integer or a float that is a whole
number (``52.0``): many telematics stacks serialise every number as a double, and a whole float
loses nothing. A float with a fraction is ``wrong_type``. Float types accept integers, because
JSON does not distinguish ``52`` from ``52.0``. ``true``/``false`` are never numbers, even though
Python's ``bool`` is a subclass of ``int``.

No I/O: this module is pure data and is imported by simulator, ingest, diagnostics and docs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Powertrain(StrEnum):
    ICE = "ice"
    BEV = "bev"
    PHEV = "phev"
    HEV = "hev"


class Datatype(StrEnum):
    """VSS datatypes used by the catalogue (VSS "Datatypes" chapter)."""

    BOOLEAN = "boolean"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    FLOAT = "float"
    DOUBLE = "double"
    STRING = "string"


#: Value range of each VSS integer type; a value outside it cannot be stored by a VSS client.
INTEGER_BOUNDS: Final[Mapping[Datatype, tuple[int, int]]] = MappingProxyType(
    {
        Datatype.UINT8: (0, 2**8 - 1),
        Datatype.UINT16: (0, 2**16 - 1),
        Datatype.UINT32: (0, 2**32 - 1),
        Datatype.INT8: (-(2**7), 2**7 - 1),
        Datatype.INT16: (-(2**15), 2**15 - 1),
        Datatype.INT32: (-(2**31), 2**31 - 1),
    }
)
FLOAT_TYPES: Final = frozenset({Datatype.FLOAT, Datatype.DOUBLE})

#: Units the catalogue may use, spelled as in VSS ``units.yaml``.
UNITS: Final = frozenset(
    {
        "km/h",
        "km",
        "m",
        "percent",
        "V",
        "A",
        "W",
        "kPa",
        "celsius",
        "degrees",
        "rpm",
        "l/100km",
        "s",
        "m/s^2",
    }
)

# Stable reason codes returned by SignalSpec.check(); they are dead-letter reasons, so never
# rename one (add a new code instead).
WRONG_TYPE: Final = "wrong_type"
NON_FINITE_VALUE: Final = "non_finite_value"
OUT_OF_RANGE: Final = "out_of_range"
NOT_ALLOWED_VALUE: Final = "not_allowed_value"


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One VSS signal: what type and unit its value has, where it is valid and on which cars."""

    name: str
    datatype: Datatype
    unit: str | None
    min: float | None
    max: float | None
    powertrains: frozenset[Powertrain]
    description: str
    allowed: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # The table is hand-written; catching a typo here beats a silently wrong range.
        if not self.name.startswith("Vehicle."):
            raise ValueError(f"{self.name}: VSS paths start with 'Vehicle.'")
        if self.unit is not None and self.unit not in UNITS:
            raise ValueError(f"{self.name}: unknown unit {self.unit!r}")
        if not self.powertrains:
            raise ValueError(f"{self.name}: applies to no powertrain")
        if self.is_numeric:
            if self.min is None or self.max is None or not self.min < self.max:
                raise ValueError(f"{self.name}: numeric signals need min < max")
            bounds = INTEGER_BOUNDS.get(self.datatype)
            if bounds is not None and not bounds[0] <= self.min < self.max <= bounds[1]:
                raise ValueError(f"{self.name}: range does not fit {self.datatype}")
            if self.allowed is not None:
                raise ValueError(f"{self.name}: allowed values are for strings only")
        elif self.min is not None or self.max is not None:
            raise ValueError(f"{self.name}: {self.datatype} signals have no range")
        if self.allowed is not None and self.datatype is not Datatype.STRING:
            raise ValueError(f"{self.name}: allowed values are for strings only")

    @property
    def is_numeric(self) -> bool:
        return self.datatype not in (Datatype.BOOLEAN, Datatype.STRING)

    def check(self, value: object) -> str | None:
        """``None`` if ``value`` is acceptable for this signal, else a stable reason code."""
        if self.datatype is Datatype.BOOLEAN:
            return None if isinstance(value, bool) else WRONG_TYPE
        if self.datatype is Datatype.STRING:
            return self._check_string(value)
        return self._check_number(value)

    def _check_string(self, value: object) -> str | None:
        if not isinstance(value, str):
            return WRONG_TYPE
        if self.allowed is not None and value not in self.allowed:
            return NOT_ALLOWED_VALUE
        return None

    def _check_number(self, value: object) -> str | None:
        # bool first: isinstance(True, int) holds in Python, but JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return WRONG_TYPE
        if isinstance(value, float):
            if not math.isfinite(value):
                return NON_FINITE_VALUE
            if self.datatype not in FLOAT_TYPES and not value.is_integer():
                return WRONG_TYPE
        # __post_init__ guarantees both bounds for numeric signals and that they lie inside the
        # integer type's own range, so this one comparison also enforces the type's width.
        too_low = self.min is not None and value < self.min
        too_high = self.max is not None and value > self.max
        return OUT_OF_RANGE if too_low or too_high else None


ALL_POWERTRAINS: Final = frozenset(Powertrain)
_FUEL: Final = frozenset({Powertrain.ICE, Powertrain.PHEV, Powertrain.HEV})
# HEVs have a (small) traction battery but are never plugged in.
_TRACTION: Final = frozenset({Powertrain.BEV, Powertrain.PHEV, Powertrain.HEV})
_PLUG_IN: Final = frozenset({Powertrain.BEV, Powertrain.PHEV})

_ENGINE_OIL_LEVELS: Final = ("CRITICALLY_LOW", "LOW", "NORMAL", "HIGH", "CRITICALLY_HIGH")
_MAX_RANGE_M: Final = 5_000_000
_WEEK_S: Final = 7 * 24 * 3600
_TEN_YEARS_S: Final = 10 * 365 * 24 * 3600


def _spec(  # noqa: PLR0917 - positional on purpose: one table row per signal below
    name: str,
    datatype: Datatype,
    unit: str | None,
    lo: float | None,
    hi: float | None,
    powertrains: frozenset[Powertrain],
    description: str,
    allowed: tuple[str, ...] | None = None,
) -> SignalSpec:
    # Positional helper keeps the table below one signal per line.
    return SignalSpec(name, datatype, unit, lo, hi, powertrains, description, allowed)


def _flag(name: str, powertrains: frozenset[Powertrain], description: str) -> SignalSpec:
    return _spec(name, Datatype.BOOLEAN, None, None, None, powertrains, description)


def _wheel_signals() -> Iterator[SignalSpec]:
    """Tyre and brake signals for the four wheels of a two-axle car (VSS Chassis.Axle.RowN)."""
    for row in (1, 2):
        for side in ("Left", "Right"):
            wheel = f"Vehicle.Chassis.Axle.Row{row}.Wheel.{side}"
            where = f"row {row} {side.lower()} wheel"
            # fmt: off
            yield _spec(f"{wheel}.Tire.Pressure", Datatype.UINT16, "kPa", 0, 1000,
                        ALL_POWERTRAINS, f"Tire pressure of the {where}.")
            yield _spec(f"{wheel}.Tire.Temperature", Datatype.FLOAT, "celsius", -60, 200,
                        ALL_POWERTRAINS, f"Tire temperature of the {where}.")
            yield _spec(f"{wheel}.Brake.PadWear", Datatype.UINT8, "percent", 0, 100,
                        ALL_POWERTRAINS,
                        f"Brake pad wear of the {where}. 0 = no wear, 100 = worn out.")
            # fmt: on


_D = Datatype
_ALL = ALL_POWERTRAINS
_LOC = "Vehicle.CurrentLocation"
_FS = "Vehicle.Powertrain.FuelSystem"
_CE = "Vehicle.Powertrain.CombustionEngine"
_TB = "Vehicle.Powertrain.TractionBattery"
_CH = f"{_TB}.Charging"
_LV = "Vehicle.LowVoltageBattery"

# fmt: off
_SIGNALS: Final[tuple[SignalSpec, ...]] = (
    # Location (WGS 84, as measured at the GNSS antenna).
    _spec(f"{_LOC}.Latitude", _D.DOUBLE, "degrees", -90, 90, _ALL,
          "Current latitude of the vehicle in WGS 84 geodetic coordinates."),
    _spec(f"{_LOC}.Longitude", _D.DOUBLE, "degrees", -180, 180, _ALL,
          "Current longitude of the vehicle in WGS 84 geodetic coordinates."),
    _spec(f"{_LOC}.Heading", _D.DOUBLE, "degrees", 0, 360, _ALL,
          "Current heading relative to geographic north. 0 = North, 90 = East."),
    _spec(f"{_LOC}.Altitude", _D.DOUBLE, "m", -500, 9000, _ALL,
          "Current altitude relative to the WGS 84 reference ellipsoid."),
    # Motion and environment.
    _spec("Vehicle.Speed", _D.FLOAT, "km/h", 0, 400, _ALL, "Vehicle speed."),
    _spec("Vehicle.TraveledDistance", _D.FLOAT, "km", 0, 5_000_000, _ALL,
          "Odometer reading, total distance traveled during the lifetime of the vehicle."),
    _flag("Vehicle.IsMoving", _ALL, "Indicates whether the vehicle is stationary or moving."),
    _spec("Vehicle.Acceleration.Longitudinal", _D.FLOAT, "m/s^2", -30, 30, _ALL,
          "Vehicle acceleration in X (longitudinal acceleration)."),
    _spec("Vehicle.Exterior.AirTemperature", _D.FLOAT, "celsius", -60, 70, _ALL,
          "Air temperature outside the vehicle."),
    _spec("Vehicle.Cabin.HVAC.AmbientAirTemperature", _D.FLOAT, "celsius", -60, 90, _ALL,
          "Ambient air temperature inside the vehicle."),
    _spec("Vehicle.Powertrain.Transmission.CurrentGear", _D.INT8, None, -1, 16, _ALL,
          "The current gear. 0 = neutral, 1.. = forward, -1 = reverse."),
    _spec("Vehicle.Powertrain.Range", _D.UINT32, "m", 0, _MAX_RANGE_M, _ALL,
          "Remaining range using all energy sources available in the vehicle."),
    # Fuel system and combustion engine (ICE, PHEV, HEV).
    _spec(f"{_FS}.RelativeLevel", _D.UINT8, "percent", 0, 100, _FUEL,
          "Level in fuel tank as percent of capacity. 0 = empty, 100 = full."),
    _spec(f"{_FS}.Range", _D.UINT32, "m", 0, _MAX_RANGE_M, _FUEL,
          "Remaining range using only liquid fuel."),
    _spec(f"{_FS}.InstantConsumption", _D.FLOAT, "l/100km", 0, 200, _FUEL,
          "Current fuel consumption in litres per 100 km."),
    _spec(f"{_CE}.Speed", _D.UINT16, "rpm", 0, 12_000, _FUEL,
          "Engine speed measured as rotations per minute."),
    _flag(f"{_CE}.IsRunning", _FUEL, "True if the engine is rotating (Speed > 0)."),
    _spec(f"{_CE}.EngineCoolant.Temperature", _D.FLOAT, "celsius", -50, 200, _FUEL,
          "Engine coolant temperature."),
    _spec(f"{_CE}.EngineOil.Temperature", _D.FLOAT, "celsius", -50, 200, _FUEL,
          "Engine oil temperature."),
    _spec(f"{_CE}.EngineOil.Level", _D.STRING, None, None, None, _FUEL,
          "Engine oil level.", _ENGINE_OIL_LEVELS),
    # Traction (high-voltage) battery (BEV, PHEV, HEV).
    _spec(f"{_TB}.StateOfCharge.Current", _D.FLOAT, "percent", 0, 100, _TRACTION,
          "Physical state of charge of the high-voltage battery, relative to net capacity."),
    _spec(f"{_TB}.StateOfHealth", _D.FLOAT, "percent", 0, 100, _TRACTION,
          "Calculated battery state of health at standard conditions."),
    _spec(f"{_TB}.CurrentVoltage", _D.FLOAT, "V", 0, 1500, _TRACTION,
          "Current voltage of the high-voltage battery."),
    _spec(f"{_TB}.CurrentPower", _D.FLOAT, "W", -1_000_000, 1_000_000, _TRACTION,
          "Power flowing in (positive, charging) or out (negative, driving) of the battery."),
    _spec(f"{_TB}.Temperature.Average", _D.FLOAT, "celsius", -50, 100, _TRACTION,
          "Current average temperature of the battery cells."),
    _spec(f"{_TB}.Range", _D.UINT32, "m", 0, _MAX_RANGE_M, _PLUG_IN,
          "Remaining range using only the battery."),
    # Charging (plug-in vehicles only: BEV, PHEV).
    _flag(f"{_CH}.IsCharging", _PLUG_IN,
          "True if energy is flowing from the charger to the vehicle."),
    _flag(f"{_CH}.IsChargingCableConnected", _PLUG_IN,
          "Indicates if a charging cable is physically connected to the vehicle."),
    _spec(f"{_CH}.ChargeLimit", _D.UINT8, "percent", 0, 100, _PLUG_IN,
          "Target charge limit (state of charge) for the battery."),
    _spec(f"{_CH}.ChargeRate", _D.FLOAT, "km/h", 0, 5000, _PLUG_IN,
          "Current charging rate, as kilometres of range added per hour."),
    _spec(f"{_CH}.TimeToComplete", _D.UINT32, "s", 0, _WEEK_S, _PLUG_IN,
          "Time until the charge limit is reached. 0 if no charging is active or planned."),
    # 12/24 V battery.
    _spec(f"{_LV}.CurrentVoltage", _D.FLOAT, "V", 0, 32, _ALL,
          "Current voltage of the low-voltage battery."),
    _spec(f"{_LV}.CurrentCurrent", _D.FLOAT, "A", -2000, 2000, _ALL,
          "Current flowing in (positive) or out (negative) of the low-voltage battery."),
    # Tyres and brakes, four wheels.
    *_wheel_signals(),
    # Service.
    _spec("Vehicle.Service.DistanceToService", _D.FLOAT, "km", -1_000_000, 1_000_000, _ALL,
          "Remaining distance to service of any kind. Negative = service overdue."),
    _spec("Vehicle.Service.TimeToService", _D.INT32, "s", -_TEN_YEARS_S, _TEN_YEARS_S, _ALL,
          "Remaining time to service of any kind. Negative = service overdue."),
    _flag("Vehicle.Service.IsServiceDue", _ALL,
          "Indicates if the vehicle needs service of any kind."),
)
# fmt: on


def _index(specs: Iterable[SignalSpec]) -> Mapping[str, SignalSpec]:
    index: dict[str, SignalSpec] = {}
    for spec in specs:
        if spec.name in index:
            raise ValueError(f"signal {spec.name} is defined twice")
        index[spec.name] = spec
    return MappingProxyType(index)


#: Every known signal by VSS path, in table order. Read-only.
CATALOGUE: Final[Mapping[str, SignalSpec]] = _index(_SIGNALS)


def get_signal(name: str) -> SignalSpec | None:
    """The spec of ``name``, or ``None`` for a signal the catalogue does not know (legal)."""
    return CATALOGUE.get(name)


def signals_for(powertrain: Powertrain) -> tuple[SignalSpec, ...]:
    """The signals a car with ``powertrain`` can send, in catalogue order."""
    return tuple(spec for spec in CATALOGUE.values() if powertrain in spec.powertrains)
