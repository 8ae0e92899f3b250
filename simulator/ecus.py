"""The electronic control units of a simulated car, with their software versions.

What the OTA service targets and a version report lists (Uptane: ECU serial, hardware id,
installed image). A car's ECUs are a pure function of its VIN, brand, model, powertrain and
model year, drawn from a random stream of their own, so adding them changed no other draw of a
fleet: same seed, same cars as before.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from protocol.catalogue import Powertrain

# Every car; then by what the powertrain has.
_COMMON = ("tcu", "ivi", "bcm", "adas")
_ENGINE = ("ecm",)
_TRACTION = ("bms", "inverter")
_PLUG_IN = ("obc",)  # on-board charger
_FIRST_MODEL_YEAR = 2015


@dataclass(frozen=True, slots=True)
class Ecu:
    name: str  # the function: tcu (telematics), ivi, bcm (body), adas, ecm, bms, inverter, obc
    hardware_id: str  # what an image must be built for: the same for every car of a model
    serial: str  # this unit, unique per car and ECU
    software_version: str  # MAJOR.MINOR.PATCH


def ecu_names(powertrain: Powertrain) -> tuple[str, ...]:
    names = list(_COMMON)
    if powertrain is not Powertrain.BEV:
        names += _ENGINE
    if powertrain is not Powertrain.ICE:
        names += _TRACTION
    if powertrain in (Powertrain.BEV, Powertrain.PHEV):
        names += _PLUG_IN
    return tuple(names)


def _slug(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())[:8]


def build_ecus(
    vin: str, brand: str, model: str, powertrain: Powertrain, model_year: int
) -> tuple[Ecu, ...]:
    rng = random.Random(f"fleetlink.ecus:{vin}")
    ecus = []
    for name in ecu_names(powertrain):
        # Newer cars left the factory on newer software, and cars have been updated unevenly
        # since: a fleet holds a spread of versions per hardware id, as OTA campaigns meet.
        major = 1 + max(0, model_year - _FIRST_MODEL_YEAR) // 2
        version = f"{major}.{rng.randint(0, 5)}.{rng.randint(0, 9)}"
        ecus.append(
            Ecu(
                name=name,
                hardware_id=f"{_slug(brand)}-{_slug(model)}-{name.upper()}-H{1 + model_year % 3}",
                serial=f"{name.upper()}-{vin[-8:]}-{rng.randrange(16**6):06X}",
                software_version=version,
            )
        )
    return tuple(ecus)
