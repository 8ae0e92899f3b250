"""The new-vehicle warranty check. Pure: no I/O, ``today`` passed in.

A brand's terms give years and (optionally) kilometres, whichever comes first. The warranty
starts on the first registration, as the workshop reads it from the registration document;
without it, on 1 January of the model year (the earliest a car of that year is registered,
so the check never promises more than the terms give). It runs until the day before the
anniversary (``years`` after the start) and while the odometer shows at most ``km``. Without an
odometer reading a mileage-limited warranty cannot be decided: ``mileage_unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Literal

StartBasis = Literal["first_registration", "model_year"]
OdometerBasis = Literal["workshop", "telemetry"]


class WarrantyStatus(StrEnum):
    COVERED = "covered"
    EXPIRED_AGE = "expired_age"
    EXPIRED_MILEAGE = "expired_mileage"
    MILEAGE_UNKNOWN = "mileage_unknown"
    NO_TERMS = "no_terms"


@dataclass(frozen=True, slots=True)
class WarrantyTerms:
    brand: str
    years: int
    km: int | None  # None: no mileage limit


@dataclass(frozen=True, slots=True)
class WarrantyDecision:
    status: WarrantyStatus
    starts_on: date
    start_basis: StartBasis
    expires_on: date | None
    km_limit: int | None
    odometer_km: float | None
    odometer_basis: OdometerBasis | None

    @property
    def covered(self) -> bool:
        return self.status is WarrantyStatus.COVERED

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "covered": self.covered,
            "starts_on": self.starts_on.isoformat(),
            "start_basis": self.start_basis,
            "expires_on": self.expires_on.isoformat() if self.expires_on else None,
            "km_limit": self.km_limit,
            "odometer_km": self.odometer_km,
            "odometer_basis": self.odometer_basis,
        }


def anniversary(start: date, years: int) -> date:
    """``start`` plus ``years`` calendar years; 29 February falls back to 28 February."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        return start.replace(year=start.year + years, day=28)


def decide_warranty(
    terms: WarrantyTerms | None,
    *,
    model_year: int,
    first_registered_on: date | None,
    odometer_km: float | None,
    odometer_basis: OdometerBasis | None,
    today: date,
) -> WarrantyDecision:
    start_basis: StartBasis
    if first_registered_on is not None:
        starts_on, start_basis = first_registered_on, "first_registration"
    else:
        starts_on, start_basis = date(model_year, 1, 1), "model_year"

    def decision(status: WarrantyStatus) -> WarrantyDecision:
        return WarrantyDecision(
            status=status,
            starts_on=starts_on,
            start_basis=start_basis,
            expires_on=anniversary(starts_on, terms.years) if terms else None,
            km_limit=terms.km if terms else None,
            odometer_km=odometer_km,
            odometer_basis=odometer_basis if odometer_km is not None else None,
        )

    if terms is None:
        return decision(WarrantyStatus.NO_TERMS)
    if today >= anniversary(starts_on, terms.years):
        return decision(WarrantyStatus.EXPIRED_AGE)
    if terms.km is not None:
        if odometer_km is None:
            return decision(WarrantyStatus.MILEAGE_UNKNOWN)
        if odometer_km > terms.km:
            return decision(WarrantyStatus.EXPIRED_MILEAGE)
    return decision(WarrantyStatus.COVERED)
