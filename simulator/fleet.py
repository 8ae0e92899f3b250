"""Fleet composition: which cars a simulated fleet has.

A fleet is a pure function of ``(count, seed, city)``, so a test, a benchmark and a demo that use
the same seed drive the same cars. VINs follow ISO 3779 (WMI, VDS, check digit at position 9 per
49 CFR 565, model-year code at position 10, plant code, serial); they carry real manufacturer
WMIs so that the backend sees the brand structure it will see in production.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from protocol.catalogue import Powertrain
from protocol.vin import Vin, with_check_digit
from simulator.city import MUNICH, City
from simulator.ecus import Ecu, build_ecus

#: Powertrain shares of a simulated fleet (roughly a European 2025 car parc with an EV tilt).
POWERTRAIN_MIX: tuple[tuple[Powertrain, float], ...] = (
    (Powertrain.ICE, 0.50),
    (Powertrain.BEV, 0.25),
    (Powertrain.PHEV, 0.15),
    (Powertrain.HEV, 0.10),
)

MIN_MODEL_YEAR = 2016
MAX_MODEL_YEAR = 2025
# ISO 3779 / 49 CFR 565.15 position 10: letters skip I, O, Q, U, Z and the digit 0; 2010 = A.
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"


def model_year_code(year: int) -> str:
    """The VIN position-10 character for ``year`` (30-year cycle starting 2010 = 'A')."""
    return _YEAR_CODES[(year - 2010) % len(_YEAR_CODES)]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A catalogue entry a fleet draws cars from (nominal data, rounded public figures)."""

    brand: str
    model: str
    powertrain: Powertrain
    wmi: str
    vds: str  # VIN positions 4-8
    plant: str  # VIN position 11
    first_year: int
    mass_kg: float
    drag_area_m2: float  # Cd * frontal area
    tank_l: float | None = None
    battery_kwh: float | None = None  # usable capacity
    # Typical urban consumption (stop-and-go, ~25 km/h average); the vehicle model calibrates
    # its engine efficiency / auxiliary load from it. Energy is taken from the battery.
    fuel_l_per_100km: float | None = None
    energy_kwh_per_100km: float | None = None


_ICE, _BEV, _PHEV, _HEV = Powertrain.ICE, Powertrain.BEV, Powertrain.PHEV, Powertrain.HEV

# fmt: off
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("Volkswagen", "Golf", _ICE, "WVW", "ZZZCD", "W", 2020, 1300, 0.64, tank_l=50,
              fuel_l_per_100km=5.6),
    ModelSpec("Volkswagen", "Passat Variant", _ICE, "WVW", "ZZZ3C", "E", 2016, 1550, 0.68,
              tank_l=66, fuel_l_per_100km=6.2),
    ModelSpec("Volkswagen", "ID.3", _BEV, "WVW", "ZZZE1", "Z", 2020, 1800, 0.62,
              battery_kwh=58, energy_kwh_per_100km=13.5),
    ModelSpec("Volkswagen", "Golf GTE", _PHEV, "WVW", "ZZZCD", "W", 2021, 1620, 0.64,
              tank_l=40, battery_kwh=10.4, fuel_l_per_100km=5.8, energy_kwh_per_100km=13.0),
    ModelSpec("BMW", "320i", _ICE, "WBA", "5R110", "F", 2019, 1500, 0.60, tank_l=59,
              fuel_l_per_100km=6.4),
    ModelSpec("BMW", "330e", _PHEV, "WBA", "5P710", "F", 2019, 1740, 0.60, tank_l=40,
              battery_kwh=10.6, fuel_l_per_100km=6.0, energy_kwh_per_100km=13.5),
    ModelSpec("BMW", "i4 eDrive40", _BEV, "WBY", "71AW0", "F", 2021, 2050, 0.56,
              battery_kwh=80.7, energy_kwh_per_100km=14.0),
    ModelSpec("BMW", "X5 xDrive50e", _PHEV, "WBA", "TA810", "9", 2023, 2450, 0.84,
              tank_l=69, battery_kwh=25.7, fuel_l_per_100km=8.5, energy_kwh_per_100km=17.5),
    ModelSpec("Mercedes-Benz", "C 200", _ICE, "WDD", "20504", "R", 2016, 1500, 0.60,
              tank_l=66, fuel_l_per_100km=6.5),
    ModelSpec("Mercedes-Benz", "EQA 250", _BEV, "W1N", "24370", "J", 2021, 2040, 0.68,
              battery_kwh=66.5, energy_kwh_per_100km=14.5),
    ModelSpec("Mercedes-Benz", "C 300 e", _PHEV, "W1K", "20605", "R", 2022, 1990, 0.60,
              tank_l=50, battery_kwh=25.4, fuel_l_per_100km=6.8, energy_kwh_per_100km=14.0),
    ModelSpec("Tesla", "Model 3", _BEV, "5YJ", "3E1EA", "F", 2018, 1760, 0.50,
              battery_kwh=57.5, energy_kwh_per_100km=12.5),
    ModelSpec("Tesla", "Model Y", _BEV, "XP7", "YGCEK", "B", 2022, 1980, 0.58,
              battery_kwh=75.0, energy_kwh_per_100km=13.5),
    ModelSpec("Audi", "A4 Avant", _ICE, "WAU", "ZZZF4", "A", 2016, 1550, 0.63, tank_l=54,
              fuel_l_per_100km=6.5),
    ModelSpec("Audi", "Q4 e-tron", _BEV, "WAU", "ZZZFZ", "Z", 2021, 2100, 0.71,
              battery_kwh=77, energy_kwh_per_100km=15.0),
    ModelSpec("Toyota", "Yaris Hybrid", _HEV, "VNK", "KAAC3", "0", 2020, 1100, 0.58,
              tank_l=36, battery_kwh=0.7, fuel_l_per_100km=3.9),
    ModelSpec("Toyota", "Corolla Hybrid", _HEV, "SB1", "Z93BE", "0", 2019, 1380, 0.62,
              tank_l=43, battery_kwh=1.2, fuel_l_per_100km=4.4),
    ModelSpec("Toyota", "RAV4 Hybrid", _HEV, "JTM", "W1RFV", "D", 2019, 1700, 0.82,
              tank_l=55, battery_kwh=1.6, fuel_l_per_100km=5.6),
    ModelSpec("Hyundai", "Kona Electric", _BEV, "KMH", "K8812", "U", 2018, 1700, 0.66,
              battery_kwh=64, energy_kwh_per_100km=13.0),
    ModelSpec("Hyundai", "Tucson Hybrid", _HEV, "TMA", "J8164", "U", 2021, 1600, 0.78,
              tank_l=52, battery_kwh=1.5, fuel_l_per_100km=5.8),
    ModelSpec("Skoda", "Octavia", _ICE, "TMB", "JJ7NX", "P", 2016, 1350, 0.63, tank_l=50,
              fuel_l_per_100km=5.8),
    ModelSpec("Skoda", "Enyaq iV 80", _BEV, "TMB", "JC9NY", "M", 2021, 2090, 0.70,
              battery_kwh=77, energy_kwh_per_100km=15.0),
    ModelSpec("Opel", "Corsa", _ICE, "W0V", "P2HNX", "6", 2019, 1100, 0.58, tank_l=44,
              fuel_l_per_100km=5.4),
    ModelSpec("Ford", "Kuga PHEV", _PHEV, "WF0", "GXXGR", "K", 2020, 1840, 0.78, tank_l=43,
              battery_kwh=10.7, fuel_l_per_100km=6.6, energy_kwh_per_100km=14.5),
    ModelSpec("Renault", "Clio", _ICE, "VF1", "RJA00", "5", 2019, 1100, 0.61, tank_l=42,
              fuel_l_per_100km=5.3),
    ModelSpec("Renault", "Zoe", _BEV, "VF1", "AG000", "6", 2016, 1500, 0.75,
              battery_kwh=52, energy_kwh_per_100km=12.5),
)
# fmt: on


@dataclass(frozen=True, slots=True)
class VehicleProfile:
    """The immutable facts about one simulated car; its changing state lives in the model."""

    vin: Vin
    brand: str
    model: str
    model_year: int
    powertrain: Powertrain
    home_lat: float
    home_lon: float
    mass_kg: float
    drag_area_m2: float
    tank_l: float | None = None
    battery_kwh: float | None = None
    fuel_l_per_100km: float | None = None
    energy_kwh_per_100km: float | None = None
    ecus: tuple[Ecu, ...] = ()

    def __post_init__(self) -> None:
        # A profile that lacks the energy store its powertrain needs would make the vehicle
        # model fail much later with a confusing None arithmetic error.
        pt = self.powertrain
        if pt is not Powertrain.BEV and (self.tank_l is None or self.fuel_l_per_100km is None):
            raise ValueError(f"{self.vin}: a {pt} car needs tank_l and fuel_l_per_100km")
        if pt is not Powertrain.ICE and self.battery_kwh is None:
            raise ValueError(f"{self.vin}: a {pt} car needs battery_kwh")
        if self.is_plug_in and self.energy_kwh_per_100km is None:
            raise ValueError(f"{self.vin}: a {pt} car needs energy_kwh_per_100km")

    @property
    def has_engine(self) -> bool:
        return self.powertrain is not Powertrain.BEV

    @property
    def has_traction_battery(self) -> bool:
        return self.powertrain is not Powertrain.ICE

    @property
    def is_plug_in(self) -> bool:
        return self.powertrain in (Powertrain.BEV, Powertrain.PHEV)


def _models_by_powertrain() -> dict[Powertrain, tuple[ModelSpec, ...]]:
    return {pt: tuple(m for m in MODELS if m.powertrain is pt) for pt, _ in POWERTRAIN_MIX}


def _vin(spec: ModelSpec, year: int, rng: random.Random) -> Vin:
    # Serial: six digits, as most EU/US manufacturers use; drawn at random (not sequential) so
    # that fleets built from different seeds rarely share a VIN.
    serial = f"{rng.randrange(1_000_000):06d}"
    return with_check_digit(f"{spec.wmi}{spec.vds[:5]}0{model_year_code(year)}{spec.plant}{serial}")


def build_fleet(count: int, seed: int, city: City = MUNICH) -> list[VehicleProfile]:
    """``count`` vehicle profiles with unique VINs, a deterministic function of the arguments."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    # A string seed keeps this stream independent of any other Random(seed) a caller makes.
    rng = random.Random(f"fleetlink.fleet:{seed}")
    by_pt = _models_by_powertrain()
    powertrains = [pt for pt, _ in POWERTRAIN_MIX]
    weights = [w for _, w in POWERTRAIN_MIX]
    seen: set[str] = set()
    fleet: list[VehicleProfile] = []
    while len(fleet) < count:
        pt = rng.choices(powertrains, weights)[0]
        spec = rng.choice(by_pt[pt])
        year = rng.randint(max(spec.first_year, MIN_MODEL_YEAR), MAX_MODEL_YEAR)
        vin = _vin(spec, year, rng)
        if vin in seen:
            continue  # one in a million per model and year; draw the car again
        seen.add(vin)
        lat, lon = city.random_point(rng)
        fleet.append(
            VehicleProfile(
                vin=vin,
                brand=spec.brand,
                model=spec.model,
                model_year=year,
                powertrain=pt,
                home_lat=round(lat, 6),
                home_lon=round(lon, 6),
                mass_kg=spec.mass_kg,
                drag_area_m2=spec.drag_area_m2,
                tank_l=spec.tank_l,
                battery_kwh=spec.battery_kwh,
                fuel_l_per_100km=spec.fuel_l_per_100km,
                energy_kwh_per_100km=spec.energy_kwh_per_100km,
                ecus=build_ecus(vin, spec.brand, spec.model, pt, year),
            )
        )
    return fleet
