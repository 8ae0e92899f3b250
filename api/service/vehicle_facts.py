"""What the service network reads about a vehicle: registry facts, its current owner, and from
the latest state its last known position and odometer.

The position is personal data: it is used only when sampled inside the reader's window on the
car (``VehicleWindow``), so a previous owner's whereabouts never place a new owner's booking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from api.security.access import VehicleWindow
from api.service.recall_check import VehicleIdentity

LATITUDE = "Vehicle.CurrentLocation.Latitude"
LONGITUDE = "Vehicle.CurrentLocation.Longitude"
ODOMETER = "Vehicle.TraveledDistance"
#: Powertrains a mobile EV service van may serve (they carry high-voltage equipment).
MOBILE_POWERTRAINS = frozenset({"bev", "phev"})


@dataclass(frozen=True, slots=True)
class VehicleFacts:
    vin: str
    brand: str
    model: str
    model_year: int
    powertrain: str

    @property
    def identity(self) -> VehicleIdentity:
        return VehicleIdentity(self.vin, self.brand, self.model, self.model_year)

    @property
    def mobile_service_eligible(self) -> bool:
        return self.powertrain in MOBILE_POWERTRAINS


@dataclass(frozen=True, slots=True)
class KnownPosition:
    lat: float
    lon: float
    ts: datetime


@dataclass(frozen=True, slots=True)
class CurrentOwner:
    customer_id: UUID
    since: datetime


async def vehicle_facts(conn: asyncpg.Connection, vin: str) -> VehicleFacts | None:
    row = await conn.fetchrow(
        "SELECT vin, brand, model, model_year, powertrain FROM vehicles WHERE vin = $1", vin
    )
    return VehicleFacts(**dict(row)) if row else None


async def current_owner(conn: asyncpg.Connection, vin: str) -> CurrentOwner | None:
    row = await conn.fetchrow(
        "SELECT customer_id, started_at FROM vehicle_ownership WHERE vin = $1 AND ended_at IS NULL",
        vin,
    )
    return CurrentOwner(row["customer_id"], row["started_at"]) if row else None


async def _latest(
    conn: asyncpg.Connection, vin: str, signals: list[str]
) -> dict[str, tuple[float, datetime]]:
    rows = await conn.fetch(
        "SELECT signal, value, ts FROM vehicle_state WHERE vin = $1 AND signal = ANY($2::text[])"
        " AND value IS NOT NULL",
        vin,
        signals,
    )
    return {r["signal"]: (float(r["value"]), r["ts"]) for r in rows}


async def last_position(
    conn: asyncpg.Connection, vin: str, window: VehicleWindow
) -> KnownPosition | None:
    """The newest position inside ``window``, or None."""
    values = await _latest(conn, vin, [LATITUDE, LONGITUDE])
    if LATITUDE not in values or LONGITUDE not in values:
        return None
    (lat, lat_ts), (lon, lon_ts) = values[LATITUDE], values[LONGITUDE]
    ts = min(lat_ts, lon_ts)
    if not (window.admits(lat_ts) and window.admits(lon_ts)):
        return None
    return KnownPosition(lat, lon, ts)


async def odometer_km(conn: asyncpg.Connection, vin: str) -> float | None:
    """The car's latest odometer reading (not personal: the car's mileage for its warranty)."""
    values = await _latest(conn, vin, [ODOMETER])
    return values[ODOMETER][0] if ODOMETER in values else None
