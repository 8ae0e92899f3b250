"""Generate ``protocol/data/places_munich.geojson``: the places simulated cars visit and the
backend's seed data (stations, dealers, service centres, partners).

Deterministic (fixed seed): rerun after changing it with
``.venv/bin/python -m simulator.tools.make_places`` and commit the file. Locations are
jittered around real Munich districts, so they fall in plausible (not exact) places; names and
brands are realistic but the sites are fictional.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from protocol.places import OpeningHours, Place, PlaceKind, places_to_geojson
from simulator.city import MUNICH

SEED = 20251123
OUT = Path(__file__).resolve().parents[2] / "protocol" / "data" / "places_munich.geojson"

#: District centres (lat, lon), approximately.
DISTRICTS = (
    ("Altstadt", 48.1372, 11.5755), ("Maxvorstadt", 48.1500, 11.5690),
    ("Schwabing", 48.1650, 11.5860), ("Schwabing-West", 48.1640, 11.5700),
    ("Bogenhausen", 48.1540, 11.6150), ("Haidhausen", 48.1300, 11.5950),
    ("Au", 48.1250, 11.5850), ("Giesing", 48.1100, 11.5800),
    ("Sendling", 48.1180, 11.5420), ("Westend", 48.1370, 11.5350),
    ("Neuhausen", 48.1550, 11.5350), ("Moosach", 48.1800, 11.5100),
    ("Milbertshofen", 48.1850, 11.5750), ("Freimann", 48.2000, 11.6050),
    ("Berg am Laim", 48.1250, 11.6350), ("Trudering", 48.1200, 11.6700),
    ("Riem", 48.1300, 11.6900), ("Ramersdorf", 48.1100, 11.6150),
    ("Perlach", 48.0950, 11.6400), ("Obergiesing", 48.1050, 11.5950),
    ("Thalkirchen", 48.0950, 11.5450), ("Obersendling", 48.0950, 11.5300),
    ("Hadern", 48.1150, 11.4800), ("Pasing", 48.1480, 11.4600),
    ("Laim", 48.1380, 11.5030), ("Aubing", 48.1570, 11.4150),
    ("Allach", 48.1900, 11.4650), ("Feldmoching", 48.2150, 11.5400),
    ("Solln", 48.0800, 11.5200), ("Forstenried", 48.0850, 11.4950),
)  # fmt: skip

FUEL_BRANDS = ("Aral", "Shell", "Esso", "TotalEnergies", "JET", "OMV", "Agip", "Star")
CHARGE_OPERATORS = (
    ("SWM", 22.0), ("EnBW", 150.0), ("IONITY", 350.0), ("Allego", 150.0),
    ("Tesla Supercharger", 250.0), ("EWE Go", 300.0), ("E.ON Drive", 50.0),
)  # fmt: skip
DEALER_BRANDS = ("BMW", "Mercedes-Benz", "Volkswagen", "Audi", "Toyota", "Hyundai", "Skoda",
                 "Tesla")  # fmt: skip
PARTNERS = (
    ("Waschpark", "car_wash"), ("Reifen Express", "tyres"), ("Parkhaus City", "parking"),
    ("Bäckerei am Eck", "cafe"), ("Autopflege Plus", "car_wash"), ("Drive-In Café", "cafe"),
)  # fmt: skip
WORKSHOP_SKILLS = ("tyres", "brakes", "engine", "electrics", "ev_high_voltage", "hybrid",
                   "air_conditioning", "diagnostics")  # fmt: skip
WEEKDAYS = (1, 2, 3, 4, 5)


def _near(rng: random.Random, district: tuple[str, float, float]) -> tuple[float, float]:
    # ~1 km of jitter: a different street in the same district.
    _, lat, lon = district
    east, north = MUNICH.to_local(lat + rng.gauss(0.0, 0.008), lon + rng.gauss(0.0, 0.011))
    # Keep every place inside the simulated city's disc, where the cars drive.
    limit = MUNICH.radius_km * 0.95
    r = (east * east + north * north) ** 0.5
    if r > limit:
        east, north = east * limit / r, north * limit / r
    lat, lon = MUNICH.to_geo(east, north)
    return round(lat, 6), round(lon, 6)


def build_places(seed: int = SEED) -> list[Place]:
    rng = random.Random(seed)
    places: list[Place] = []
    districts = list(DISTRICTS)

    def district(i: int) -> tuple[str, float, float]:
        return districts[i % len(districts)]

    for i in range(40):
        d = district(i)
        brand = rng.choice(FUEL_BRANDS)
        hours = (
            () if rng.random() < 0.6 else (OpeningHours((1, 2, 3, 4, 5, 6, 7), "06:00", "22:00"),)
        )
        lat, lon = _near(rng, d)
        places.append(
            Place(f"fuel-{i + 1:03d}", PlaceKind.FUEL_STATION, f"{brand} {d[0]}", lat, lon, brand,
                  opening_hours=hours)
        )  # fmt: skip
    for i in range(40):
        d = district(i + 7)
        operator, power = rng.choice(CHARGE_OPERATORS)
        if rng.random() < 0.35:
            operator, power = "SWM", 22.0  # the city's many AC posts
        lat, lon = _near(rng, d)
        places.append(
            Place(f"charge-{i + 1:03d}", PlaceKind.CHARGING_STATION, f"{operator} {d[0]}",
                  lat, lon, operator, max_power_kw=power)
        )  # fmt: skip
    for i, brand in enumerate(DEALER_BRANDS):
        d = district(i * 4 + 2)
        lat, lon = _near(rng, d)
        places.append(
            Place(f"dealer-{i + 1:03d}", PlaceKind.DEALER, f"Autohaus {brand} {d[0]}", lat, lon,
                  brand, opening_hours=(OpeningHours(WEEKDAYS, "08:00", "18:00"),
                                        OpeningHours((6,), "09:00", "14:00")))
        )  # fmt: skip
    for i in range(10):
        d = district(i * 3 + 1)
        brand = DEALER_BRANDS[i % len(DEALER_BRANDS)] if i < 6 else "ATU"
        skills = ["tyres", "brakes", "diagnostics", "electrics"]
        skills += rng.sample(WORKSHOP_SKILLS[2:], k=rng.randint(1, 4))
        if brand in ("Tesla", "BMW", "Hyundai") or rng.random() < 0.4:
            skills.append("ev_high_voltage")
        lat, lon = _near(rng, d)
        places.append(
            Place(f"service-{i + 1:03d}", PlaceKind.SERVICE_CENTRE, f"{brand} Service {d[0]}",
                  lat, lon, brand, skills=tuple(sorted(set(skills))), bays=rng.randint(3, 12),
                  opening_hours=(OpeningHours(WEEKDAYS, "07:30", "18:00"),))
        )  # fmt: skip
    for i, (name, category) in enumerate(PARTNERS):
        d = district(i * 5 + 3)
        lat, lon = _near(rng, d)
        places.append(
            Place(f"partner-{i + 1:03d}", PlaceKind.PARTNER, f"{name} {d[0]}", lat, lon, name,
                  skills=(category,))
        )  # fmt: skip
    return places


def main() -> int:
    OUT.write_text(places_to_geojson(build_places()), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
