"""Which recall campaigns affect a vehicle. Pure: no I/O.

A campaign names a brand, optionally a model, an inclusive model-year range and an inclusive
range of VIN serials (ISO 3779 positions 12-17, the production sequence within a plant and
year); an open bound is unbounded. Brand and model compare without case and surrounding blanks
("BMW" and "bmw"). Serials compare as strings of equal length, which orders digit serials
numerically and is how manufacturers publish the ranges ("VINs 000100 to 002000").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

SERIAL = slice(11, 17)


@dataclass(frozen=True, slots=True)
class RecallCampaign:
    code: str
    title: str
    brand: str
    model: str | None
    model_year_from: int | None
    model_year_to: int | None
    serial_from: str | None
    serial_to: str | None
    remedy: str
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VehicleIdentity:
    vin: str
    brand: str
    model: str
    model_year: int


def _same(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def vin_serial(vin: str) -> str:
    return vin[SERIAL]


def affects(campaign: RecallCampaign, vehicle: VehicleIdentity) -> bool:
    if not campaign.active or not _same(campaign.brand, vehicle.brand):
        return False
    if campaign.model is not None and not _same(campaign.model, vehicle.model):
        return False
    if campaign.model_year_from is not None and vehicle.model_year < campaign.model_year_from:
        return False
    if campaign.model_year_to is not None and vehicle.model_year > campaign.model_year_to:
        return False
    serial = vin_serial(vehicle.vin)
    if campaign.serial_from is not None and serial < campaign.serial_from:
        return False
    return not (campaign.serial_to is not None and serial > campaign.serial_to)


def open_recalls(
    campaigns: Iterable[RecallCampaign], vehicle: VehicleIdentity, done: Iterable[str] = ()
) -> list[RecallCampaign]:
    """The campaigns affecting ``vehicle`` whose remedy has not been done yet (``done``: codes
    completed on it), by code."""
    completed = set(done)
    return sorted(
        (c for c in campaigns if c.code not in completed and affects(c, vehicle)),
        key=lambda c: c.code,
    )
