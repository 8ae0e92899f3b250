"""Demo data for the service network, so the whole journey can be clicked through in ``/docs``:
the Munich service centres of ``protocol/data/places_munich.geojson``, one mobile EV service van,
warranty terms for the brands the simulator drives, and two recall campaigns that affect some
simulated cars. Idempotent: existing rows are left as they are (an admin may have edited them).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from protocol.places import PlaceKind, load_places

CENTRE_TIMEZONE = "Europe/Berlin"
EV_VAN_ID = "ev-van-muenchen"
EV_VAN_HOME = "service-001"  # BMW Service Maxvorstadt: central, has ev_high_voltage
EV_VAN_SKILLS = ("diagnostics", "electrics", "ev_high_voltage", "tyres")

# New-vehicle warranty of the simulator's brands (simulator/fleet.py MODELS), as the makers
# publish it for Germany: (years, km or None for no mileage limit).
WARRANTY_TERMS: dict[str, tuple[int, int | None]] = {
    "Audi": (2, None),
    "BMW": (2, None),
    "Ford": (2, None),
    "Hyundai": (5, None),
    "Mercedes-Benz": (2, None),
    "Opel": (2, None),
    "Renault": (2, None),
    "Skoda": (2, None),
    "Tesla": (4, 80_000),
    "Toyota": (3, 100_000),
    "Volkswagen": (2, None),
}

# code, title, brand, model, model years, serials, remedy. The ranges cover about half of the
# simulated cars of those models (serials are drawn uniformly from 000000-999999).
RECALLS: tuple[tuple[str, str, str, str, int, int, str, str, str], ...] = (
    (
        "VW-24-ID3-HV",
        "ID.3: high-voltage battery module connector may loosen",
        "Volkswagen",
        "ID.3",
        2020,
        2023,
        "000000",
        "499999",
        "Inspect the high-voltage battery module connectors; retighten to specification and "
        "update the battery management software.",
    ),
    (
        "BMW-25-330E-BRK",
        "330e: rear brake caliper bolts may not be torqued to specification",
        "BMW",
        "330e",
        2019,
        2022,
        "200000",
        "799999",
        "Check and torque the rear brake caliper bolts; replace the bolts if stretched.",
    ),
)


def _address(name: str) -> str:
    # The place data has no street addresses: the district (last word of the name) and city.
    return f"{name.rsplit(' ', 1)[-1]}, München, DE"


async def seed_service_network(conn: asyncpg.Connection, *, now: datetime) -> None:
    """Insert what is missing, in one transaction; safe to call on every start."""
    async with conn.transaction():
        for place in load_places("munich"):
            if place.kind is not PlaceKind.SERVICE_CENTRE:
                continue
            inserted = await conn.fetchval(
                """
                INSERT INTO service_centres (id, name, brand, address, lat, lon, timezone, bays,
                    skills, slot_minutes, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 60, $10, $10)
                ON CONFLICT (id) DO NOTHING RETURNING id
                """,
                place.id,
                place.name,
                place.brand,
                _address(place.name),
                place.lat,
                place.lon,
                CENTRE_TIMEZONE,
                place.bays,
                sorted(place.skills),
                now,
            )
            if inserted is None:
                continue
            await conn.executemany(
                "INSERT INTO service_opening_hours (centre_id, weekday, opens, closes)"
                " VALUES ($1, $2, $3::text::time, $4::text::time)",
                [(place.id, day, h.opens, h.closes) for h in place.opening_hours for day in h.days],
            )
        await conn.execute(
            """
            INSERT INTO service_vans (id, name, home_centre_id, range_km, skills, slot_minutes,
                created_at, updated_at)
            SELECT $1, 'Mobile EV Service München', $2, 25, $3, 120, $4, $4
            WHERE EXISTS (SELECT 1 FROM service_centres WHERE id = $2)
            ON CONFLICT (id) DO NOTHING
            """,
            EV_VAN_ID,
            EV_VAN_HOME,
            list(EV_VAN_SKILLS),
            now,
        )
        await conn.executemany(
            "INSERT INTO warranty_terms (brand, years, km, updated_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING",
            [(brand, years, km, now) for brand, (years, km) in WARRANTY_TERMS.items()],
        )
        await conn.executemany(
            """
            INSERT INTO recall_campaigns (code, title, brand, model, model_year_from,
                model_year_to, serial_from, serial_to, remedy, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT DO NOTHING
            """,
            [(*recall, now) for recall in RECALLS],
        )
