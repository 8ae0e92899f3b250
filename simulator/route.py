"""A trip through the city and the driver's speed along it.

A :class:`Route` is a few straight segments between waypoints in the city's local east/north
plane (see :mod:`simulator.city`), with traffic stops placed at random distances along it.
:func:`next_speed` is the driver: cruise with noise, slow for corners, brake to a stop at lights
and at the destination; :func:`advance_along` moves the car's position along the segments.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from simulator.city import City
from simulator.components import Motion

BRAKE_COMFORT_MPS2 = 1.8
BRAKE_MAX_MPS2 = 4.0
CORNER_SPEED_MPS = 20.0 / 3.6
MIN_TRIP_KM = 1.5
TRAFFIC_STOP_SPACING_KM = 0.9  # mean distance between stops at lights / junctions
SPEED_NOISE_MPS = 1.3  # stationary std of the cruise-speed wander
SPEED_NOISE_TAU_S = 15.0


@dataclass(slots=True)
class Route:
    """A trip as straight segments between waypoints, with the car's progress along it."""

    starts: list[tuple[float, float]]
    units: list[tuple[float, float]]  # unit vector of each segment
    lengths_km: list[float]
    headings_deg: list[float]
    length_km: float
    cruise_mps: float
    next_stop_km: float  # route position of the next stop (traffic light); inf if none
    seg: int = 0
    seg_done_km: float = 0.0
    done_km: float = 0.0
    hold_s: float = 0.0  # time left waiting at a stop
    noise_mps: float = 0.0
    stop_spacing_km: float = TRAFFIC_STOP_SPACING_KM


#: Straight-line distance above which a trip takes ring roads and motorways.
MOTORWAY_TRIP_KM = 12.0


def plan_route(
    rng: random.Random, city: City, motion: Motion, dest: tuple[float, float] | None = None
) -> Route:
    """A trip from the car's position to ``dest`` (local km), or without one to a random
    destination at least MIN_TRIP_KM away."""
    x0, y0 = motion.east_km, motion.north_km
    if dest is None:
        x1, y1 = city.random_local_point(rng)
        for _ in range(8):
            if math.hypot(x1 - x0, y1 - y0) >= MIN_TRIP_KM:
                break
            x1, y1 = city.random_local_point(rng)
    else:
        x1, y1 = dest
    dx, dy = x1 - x0, y1 - y0
    straight = math.hypot(dx, dy)
    # Zig-zag through a few waypoints offset sideways, like a street grid. The disc is
    # convex, so pulling each waypoint inside it keeps every segment inside the city.
    points = [(x0, y0)]
    legs = min(4, 1 + int(straight / 3.0))
    limit = city.radius_km * 0.98
    # A trip out of town may leave the disc; one inside it never does.
    inside = math.hypot(x0, y0) <= city.radius_km and math.hypot(x1, y1) <= city.radius_km
    if not inside:
        limit = math.inf
    for i in range(1, legs):
        offset = rng.uniform(-0.2, 0.2) * straight / legs
        ux, uy = (dx / straight, dy / straight) if straight > 0 else (0.0, 0.0)
        px = x0 + dx * i / legs - uy * offset
        py = y0 + dy * i / legs + ux * offset
        r = math.hypot(px, py)
        if r > limit:
            px, py = px * limit / r, py * limit / r
        points.append((px, py))
    points.append((x1, y1))
    starts: list[tuple[float, float]] = []
    units: list[tuple[float, float]] = []
    lengths: list[float] = []
    headings: list[float] = []
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        length = math.hypot(bx - ax, by - ay)
        if length < 1e-6:
            continue
        starts.append((ax, ay))
        units.append(((bx - ax) / length, (by - ay) / length))
        lengths.append(length)
        headings.append(math.degrees(math.atan2(bx - ax, by - ay)) % 360.0)
    if not lengths:  # destination == origin; a zero-length trip ends at once
        starts, units, lengths, headings = [(x0, y0)], [(0.0, 1.0)], [0.0], [motion.heading_deg]
    total = sum(lengths)
    motorway = straight > MOTORWAY_TRIP_KM
    cruise_kmh = rng.uniform(90.0, 125.0) if motorway else rng.uniform(30.0, 70.0)
    spacing = 5.0 if motorway else TRAFFIC_STOP_SPACING_KM
    return Route(
        starts=starts,
        units=units,
        lengths_km=lengths,
        headings_deg=headings,
        length_km=total,
        cruise_mps=cruise_kmh / 3.6,
        next_stop_km=next_stop_km(rng, 0.0, spacing),
        stop_spacing_km=spacing,
    )


def next_stop_km(
    rng: random.Random, done_km: float, spacing_km: float = TRAFFIC_STOP_SPACING_KM
) -> float:
    """Route position of the next traffic stop after ``done_km``."""
    return done_km + max(0.15, rng.expovariate(1.0 / spacing_km))


def reachable_speed(v: float, dist_m: float, v_end: float, dt_s: float) -> float:
    """Highest speed after ``dt_s`` from which the car can still brake comfortably to ``v_end``
    within ``dist_m``: solves v'^2 = v_end^2 + 2b(d - (v + v')dt/2) for v'."""
    b = BRAKE_COMFORT_MPS2
    c = v_end * v_end + 2.0 * b * dist_m - b * dt_s * v
    if c <= 0.0:
        return 0.0
    return (-b * dt_s + math.sqrt(b * b * dt_s * dt_s + 4.0 * c)) / 2.0


def next_speed(route: Route, v: float, h: float, rng: random.Random, accel_max: float) -> float:
    """The driver's speed ``h`` s after driving at ``v`` along ``route``."""
    # Cruise speed wanders as an Ornstein-Uhlenbeck process (traffic, driver).
    tau = SPEED_NOISE_TAU_S
    noise = route.noise_mps * (1.0 - h / tau) if h < tau else 0.0
    noise += SPEED_NOISE_MPS * math.sqrt(2.0 * min(h, tau) / tau) * rng.gauss(0.0, 1.0)
    bound = 0.4 * route.cruise_mps
    route.noise_mps = noise = min(max(noise, -bound), bound)
    target = route.cruise_mps + noise
    d_stop_m = (min(route.next_stop_km, route.length_km) - route.done_km) * 1000.0
    target = min(target, reachable_speed(v, d_stop_m, 0.0, h))
    if route.seg < len(route.lengths_km) - 1:
        d_corner_m = (route.lengths_km[route.seg] - route.seg_done_km) * 1000.0
        target = min(target, reachable_speed(v, d_corner_m, CORNER_SPEED_MPS, h))
    if target >= v:
        return min(target, v + accel_max * h)
    return max(target, v - BRAKE_MAX_MPS2 * h, 0.0)


def advance_along(route: Route, motion: Motion, ds_km: float) -> None:
    """Move ``ds_km`` further along ``route``, updating the car's position and heading."""
    route.done_km += ds_km
    last = len(route.lengths_km) - 1
    rest = ds_km
    while route.seg < last and rest >= route.lengths_km[route.seg] - route.seg_done_km:
        rest -= route.lengths_km[route.seg] - route.seg_done_km
        route.seg += 1
        route.seg_done_km = 0.0
    route.seg_done_km = min(route.seg_done_km + rest, route.lengths_km[route.seg])
    (sx, sy), (ux, uy) = route.starts[route.seg], route.units[route.seg]
    motion.east_km = sx + ux * route.seg_done_km
    motion.north_km = sy + uy * route.seg_done_km
    motion.heading_deg = route.headings_deg[route.seg]
