"""A population of customers and their cars for the offers tests and the evaluation: inserted
in bulk (SQL), each with its own consent, quiet hours and time zone."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from uuid import UUID, uuid4

import asyncpg

from api.customers.consent import ConsentSource, Purpose

_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def synthetic_vin(i: int, prefix: str = "WFL") -> str:
    """A valid-looking 17-character VIN, unique per ``i``."""
    digits = []
    n = i
    for _ in range(8):
        digits.append(_VIN_CHARS[n % len(_VIN_CHARS)])
        n //= len(_VIN_CHARS)
    return f"{prefix}ZZZ1JZ{''.join(reversed(digits))}"[:17].ljust(17, "0")


@dataclass(frozen=True, slots=True)
class Member:
    vin: str
    customer_id: UUID
    marketing: bool
    location: bool
    quiet_hours: tuple[time, time] | None


async def populate(
    pool: asyncpg.Pool,
    vins: Sequence[str],
    *,
    now: datetime,
    marketing: Callable[[int], bool] = lambda i: i % 2 == 0,
    location: Callable[[int], bool] = lambda i: True,
    quiet_hours: Callable[[int], tuple[time, time] | None] = lambda i: None,
    powertrain: Callable[[int], str] = lambda i: "ice",
    timezone: str = "Europe/Berlin",
    facts: Mapping[str, tuple[str, str, int, str]] | None = None,
) -> list[Member]:
    """One customer per VIN, owning it since ``now`` minus a year; vehicles are registered
    unless they already are (``facts``: VIN -> brand, model, model year, powertrain; default
    a BMW 320i of 2024 with ``powertrain(i)``)."""
    members = []
    vehicles, customers, ownership, consents = [], [], [], []
    for i, vin in enumerate(vins):
        customer_id = uuid4()
        quiet = quiet_hours(i)
        members.append(Member(vin, customer_id, marketing(i), location(i), quiet))
        brand, model, year, kind = (facts or {}).get(vin, ("BMW", "320i", 2024, powertrain(i)))
        vehicles.append((vin, brand, model, year, kind, "x", now))
        customers.append(
            (
                customer_id,
                f"owner{i}@example.test",
                "en" if i % 3 else "de",
                quiet[0] if quiet else None,
                quiet[1] if quiet else None,
                timezone,
                now,
            )
        )
        ownership.append((vin, customer_id, now.replace(year=now.year - 1)))
        for purpose, granted in (
            (Purpose.MARKETING, marketing(i)),
            (Purpose.LOCATION, location(i)),
        ):
            consents.append((customer_id, purpose.value, granted, ConsentSource.APP.value, now))
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO vehicles (vin, brand, model, model_year, powertrain, secret_hash,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (vin) DO NOTHING",
            vehicles,
        )
        await conn.executemany(
            "INSERT INTO customers (id, email, language, quiet_hours_start, quiet_hours_end,"
            " timezone, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            customers,
        )
        await conn.executemany(
            "INSERT INTO vehicle_ownership (vin, customer_id, source, started_at)"
            " VALUES ($1, $2, 'admin', $3)",
            ownership,
        )
        await conn.executemany(
            "INSERT INTO consent_records (customer_id, purpose, granted, source, recorded_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            consents,
        )
        await conn.executemany(
            "INSERT INTO customer_consents (customer_id, purpose, granted, source, changed_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            consents,
        )
    return members
