"""How fast the geofence index answers, against asking every fence, and against what a fleet
needs.

One lookup is what the offers engine does per position: :meth:`GeofenceIndex.containing`
(enter/exit/dwell) plus :meth:`GeofenceIndex.near` for fuel stations within 5 km (the
low-energy rule). Fences (60 % circles, 40 % star-shaped polygons, radii 50 m - 3 km
log-uniform, random kinds) and positions are uniform over the simulated Munich
(:data:`simulator.city.MUNICH`, 12 km radius), seeded. The brute force asks every fence the
same two questions for a sample of the positions (it is too slow for all of them) and must
give the same answers; its rate is per lookup, so the sample size does not bias it.

The need: 10,000 cars each reporting a position every 15 s. ``headroom`` is how many times
over one core's index lookups cover that.

Times are CPU time of this process (``time.process_time``): the lookups are single-threaded
CPU work, so that is what capacity planning needs, and it is not skewed by whatever else runs
on the machine. Positions are generated before the clock starts.

The speedup is bounded by the answer's size, not by the index: with these fences (far denser
than a real city's) some 60 fuel stations lie within 5 km of a typical position, and each one
found costs one exact distance, the brute force's unit of work too.
"""

from __future__ import annotations

import math
import random
import time

from diagnostics.offers.geo import Circle, Geofence, Geometry, Polygon
from diagnostics.offers.geo_index import GeofenceIndex
from protocol.places import PlaceKind
from simulator.city import MUNICH, destination_point

FLEET_VEHICLES = 10_000
REPORT_INTERVAL_S = 15.0
NEAR_RADIUS_M = 5_000.0
NEAR_KINDS = frozenset({PlaceKind.FUEL_STATION})
BRUTE_FORCE_SAMPLE = 2_000


def _random_fences(rng: random.Random, count: int) -> list[Geofence]:
    kinds = tuple(PlaceKind)
    fences = []
    for i in range(count):
        lat, lon = MUNICH.random_point(rng)
        radius_m = math.exp(rng.uniform(math.log(50.0), math.log(3_000.0)))
        geometry: Geometry
        if rng.random() < 0.6:
            geometry = Circle(lat, lon, radius_m)
        else:
            bearings = sorted(rng.uniform(0.0, 360.0) for _ in range(rng.randint(3, 10)))
            geometry = Polygon(
                tuple(
                    destination_point(lat, lon, b, radius_m * rng.uniform(0.3, 1.0) / 1000.0)
                    for b in bearings
                )
            )
        fences.append(Geofence(f"fence-{i:05d}", rng.choice(kinds), f"fence {i}", geometry))
    return fences


def _lookup(index: GeofenceIndex, lat: float, lon: float) -> tuple[list[str], list[str]]:
    inside = [fence.id for fence in index.containing(lat, lon)]
    near = [fence.id for fence, _ in index.near(lat, lon, NEAR_RADIUS_M, NEAR_KINDS)]
    return inside, near


def _brute_force(fences: list[Geofence], lat: float, lon: float) -> tuple[list[str], list[str]]:
    inside = sorted(fence.id for fence in fences if fence.contains(lat, lon))
    near = sorted(
        (distance, fence.id)
        for fence in fences
        if fence.kind in NEAR_KINDS and (distance := fence.distance_m(lat, lon)) <= NEAR_RADIUS_M
    )
    return inside, [fence_id for _, fence_id in near]


def run_geofence_bench(
    *, fences: int = 2_000, positions: int = 200_000, seed: int = 1
) -> dict[str, float]:
    """Build the index, time the lookups (index and brute force); returns the figures."""
    if fences < 1 or positions < 1:
        raise ValueError("need at least one fence and one position")
    rng = random.Random(seed)
    fence_list = _random_fences(rng, fences)
    points = [MUNICH.random_point(rng) for _ in range(positions)]

    started = time.process_time()
    index = GeofenceIndex(fence_list)
    build_s = time.process_time() - started

    hits = near_hits = 0
    started = time.process_time()
    for lat, lon in points:
        hits += len(index.containing(lat, lon))
    containing_s = time.process_time() - started
    started = time.process_time()
    for lat, lon in points:
        near_hits += len(index.near(lat, lon, NEAR_RADIUS_M, NEAR_KINDS))
    near_s = time.process_time() - started
    index_s = containing_s + near_s

    sample = points[: min(BRUTE_FORCE_SAMPLE, positions)]
    started = time.process_time()
    brute = [_brute_force(fence_list, lat, lon) for lat, lon in sample]
    brute_s = time.process_time() - started
    # Not timed: the index must have given the same answers.
    for (lat, lon), expected in zip(sample, brute, strict=True):
        if _lookup(index, lat, lon) != expected:
            raise RuntimeError(f"index and brute force disagree at ({lat}, {lon})")

    index_rate = positions / index_s
    brute_rate = len(sample) / brute_s
    needed = FLEET_VEHICLES / REPORT_INTERVAL_S
    return {
        "fences": float(fences),
        "positions": float(positions),
        "build_s": build_s,
        "mean_containing": hits / positions,
        "mean_near": near_hits / positions,
        "index_lookups_per_s": index_rate,
        "containing_per_s": positions / containing_s,
        "near_per_s": positions / near_s,
        "brute_force_lookups_per_s": brute_rate,
        "brute_force_sample": float(len(sample)),
        "speedup": index_rate / brute_rate,
        "fleet_positions_per_s_needed": needed,
        "headroom": index_rate / needed,
    }


def format_table(figures: dict[str, float]) -> str:
    f = figures
    rows = [
        (
            "fences",
            f"{f['fences']:,.0f} around Munich (index built in {f['build_s'] * 1000:.0f} ms)",
        ),
        (
            "lookup",
            f"containing + near({NEAR_RADIUS_M:,.0f} m, fuel stations); on average "
            f"{f['mean_containing']:.1f} fences containing, {f['mean_near']:.1f} stations near",
        ),
        (
            "index",
            f"{f['index_lookups_per_s']:,.0f} lookups/s ({f['positions']:,.0f} positions; "
            f"containing alone {f['containing_per_s']:,.0f}/s, "
            f"near alone {f['near_per_s']:,.0f}/s)",
        ),
        (
            "brute force",
            f"{f['brute_force_lookups_per_s']:,.0f} lookups/s "
            f"(every fence asked; {f['brute_force_sample']:,.0f} positions)",
        ),
        ("speedup", f"{f['speedup']:.1f}x"),
        (
            "fleet needs",
            f"{f['fleet_positions_per_s_needed']:,.0f} positions/s "
            f"({FLEET_VEHICLES:,} cars, one position every {REPORT_INTERVAL_S:g} s)",
        ),
        ("headroom", f"{f['headroom']:.1f}x on one core"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in rows)
