"""The geofence grid index (diagnostics.offers.geo_index) against brute force.

"Brute force" asks every fence about every point. To keep 2,000 fences x 20,000 points within
a second or two, numpy first discards the pairs that cannot possibly match (a point farther
than radius + 1 m from a circle's centre, a point outside a polygon's vertex range -- computed
here from the vertices, not with the code under test); every remaining pair is decided by the
fence's own ``contains``, exactly as the index must.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from diagnostics.offers.geo import (
    EARTH_RADIUS_M,
    Circle,
    GeoError,
    Geofence,
    Polygon,
    haversine_m,
)
from diagnostics.offers.geo_index import MAX_CELLS_PER_FENCE, GeofenceIndex
from protocol.places import PlaceKind
from simulator.city import destination_point

CENTRE = (48.14, 11.58)
KINDS = tuple(PlaceKind)


def _random_polygon(rng: random.Random, lat: float, lon: float, radius_m: float) -> Polygon:
    """A star-shaped ring (concave more often than not), sometimes with a hole."""
    n = rng.randint(3, 10)
    angles = sorted(rng.uniform(0, 360) for _ in range(n))
    exterior = tuple(
        destination_point(lat, lon, a, radius_m * rng.uniform(0.3, 1.0) / 1000) for a in angles
    )
    holes: tuple[tuple[tuple[float, float], ...], ...] = ()
    if rng.random() < 0.3:
        r = radius_m * 0.15 / 1000
        holes = (tuple(destination_point(lat, lon, a, r) for a in (0, 90, 180, 270)),)
    return Polygon(exterior, holes)


def _random_fences(seed: int, count: int) -> list[Geofence]:
    rng = random.Random(seed)
    fences = []
    for i in range(count):
        lat, lon = destination_point(*CENTRE, rng.uniform(0, 360), 15 * math.sqrt(rng.random()))
        radius = math.exp(rng.uniform(math.log(50), math.log(3000)))  # 50 m - 3 km, log-uniform
        geometry: Circle | Polygon = (
            Circle(lat, lon, radius)
            if rng.random() < 0.6
            else _random_polygon(rng, lat, lon, radius)
        )
        fences.append(Geofence(f"f{i:05d}", rng.choice(KINDS), f"fence {i}", geometry))
    rng.shuffle(fences)  # the index must not depend on input order
    return fences


def _random_points(seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # A disc a bit larger than the fences' so some points hit nothing.
    distance = 18_000.0 * np.sqrt(rng.random(count))
    bearing = rng.random(count) * 2 * np.pi
    lat = CENTRE[0] + np.degrees(distance * np.cos(bearing) / EARTH_RADIUS_M)
    lon = CENTRE[1] + np.degrees(
        distance * np.sin(bearing) / EARTH_RADIUS_M / np.cos(np.radians(CENTRE[0]))
    )
    return np.column_stack([lat, lon])


def _np_haversine(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    phi1, phi2 = np.radians(lat), np.radians(lats)
    a = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin(np.radians(lons - lon) / 2) ** 2
    )
    distance: np.ndarray = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return distance


def _brute_containing(fences: list[Geofence], points: np.ndarray) -> list[list[str]]:
    hits: list[list[str]] = [[] for _ in range(len(points))]
    lats, lons = points[:, 0], points[:, 1]
    for fence in fences:
        geometry = fence.geometry
        if isinstance(geometry, Circle):
            maybe = _np_haversine(geometry.lat, geometry.lon, lats, lons) <= geometry.radius_m + 1
        else:
            ring = np.array(geometry.exterior)
            maybe = (
                (lats >= ring[:, 0].min())
                & (lats <= ring[:, 0].max())
                & (lons >= ring[:, 1].min())
                & (lons <= ring[:, 1].max())
            )
        for k in np.flatnonzero(maybe):
            if fence.contains(float(lats[k]), float(lons[k])):
                hits[k].append(fence.id)
    return [sorted(h) for h in hits]


class _BruteNear:
    """Every anchor's distance, numpy-vectorised; pairs within 1 m of the radius are decided
    with the same ``haversine_m`` call the index makes, so distances compare exactly."""

    def __init__(self, fences: list[Geofence]) -> None:
        self.fences = fences
        anchors = np.array([f.geometry.anchor for f in fences]).reshape(-1, 2)
        self.lats, self.lons = anchors[:, 0], anchors[:, 1]

    def __call__(
        self, lat: float, lon: float, radius_m: float, kinds: frozenset[PlaceKind] | None
    ) -> list[tuple[str, float]]:
        maybe = _np_haversine(lat, lon, self.lats, self.lons) <= radius_m + 1.0
        found = []
        for k in np.flatnonzero(maybe):
            fence = self.fences[k]
            if kinds is not None and fence.kind not in kinds:
                continue
            d = haversine_m(lat, lon, *fence.geometry.anchor)
            if d <= radius_m:
                found.append((fence.id, d))
        return sorted(found, key=lambda pair: (pair[1], pair[0]))


def _brute_near(
    fences: list[Geofence],
    lat: float,
    lon: float,
    radius_m: float,
    kinds: frozenset[PlaceKind] | None,
) -> list[tuple[str, float]]:
    return _BruteNear(fences)(lat, lon, radius_m, kinds)


def _assert_containing_matches(
    index: GeofenceIndex, fences: list[Geofence], points: np.ndarray
) -> int:
    expected = _brute_containing(fences, points)
    for (lat, lon), ids in zip(points.tolist(), expected, strict=True):
        assert [f.id for f in index.containing(lat, lon)] == ids, (lat, lon)
    return sum(len(ids) for ids in expected)


def test_containing_equals_brute_force_for_20000_random_points() -> None:
    fences = _random_fences(seed=11, count=2_000)
    index = GeofenceIndex(fences)
    assert len(index) == 2_000
    points = _random_points(seed=12, count=20_000)
    hits = _assert_containing_matches(index, fences, points)
    assert hits > 20_000  # the data is dense enough that the comparison means something
    assert sum(1 for p in points.tolist() if not index.containing(*p)) > 100  # ...and sparse


def test_containing_on_rims_and_vertices() -> None:
    """Boundary points: polygon vertices (on the corner of the fence's own box) and points on
    circle rims must come out exactly as the fences' own contains() says."""
    fences = _random_fences(seed=21, count=400)
    index = GeofenceIndex(fences)
    points: list[tuple[float, float]] = []
    for fence in fences:
        geometry = fence.geometry
        if isinstance(geometry, Polygon):
            points.extend(geometry.exterior)
            for hole in geometry.holes:
                points.extend(hole)
        else:
            for bearing in range(0, 360, 30):
                points.append(
                    destination_point(geometry.lat, geometry.lon, bearing, geometry.radius_m / 1000)
                )
    array = np.array(points)
    _assert_containing_matches(index, fences, array)
    for fence in fences:
        if isinstance(fence.geometry, Polygon):
            for vertex in fence.geometry.exterior:
                assert fence in index.containing(*vertex)


def test_near_equals_brute_force_for_radii_and_kind_filters() -> None:
    fences = _random_fences(seed=31, count=2_000)
    index = GeofenceIndex(fences)
    points = _random_points(seed=32, count=5_000).tolist()
    queries: list[tuple[float, frozenset[PlaceKind] | None]] = [
        (0.0, None),
        (300.0, None),
        (1_500.0, frozenset({PlaceKind.FUEL_STATION})),
        (5_000.0, frozenset({PlaceKind.FUEL_STATION})),
        (5_000.0, None),
        (2_000.0, frozenset({PlaceKind.DEALER, PlaceKind.SERVICE_CENTRE})),
        (3_000.0, frozenset(PlaceKind)),
        (1_000.0, frozenset()),
    ]
    brute = _BruteNear(fences)
    found = 0
    for k, (lat, lon) in enumerate(points):
        radius, kinds = queries[k % len(queries)]
        got = index.near(lat, lon, radius, kinds)
        assert [(f.id, d) for f, d in got] == brute(lat, lon, radius, kinds)
        assert all(kinds is None or f.kind in kinds for f, _ in got)
        found += len(got)
    assert found > 25_000
    # A radius covering the whole set (the index walks its occupied cells instead).
    lat, lon = points[0]
    everything = index.near(lat, lon, 100_000.0)
    assert len(everything) == 2_000
    assert [(f.id, d) for f, d in everything] == _brute_near(fences, lat, lon, 100_000.0, None)


def test_near_accepts_any_collection_of_kinds() -> None:
    fences = _random_fences(seed=41, count=300)
    index = GeofenceIndex(fences)
    lat, lon = CENTRE
    as_set = index.near(lat, lon, 4_000.0, {PlaceKind.PARTNER, PlaceKind.DEALER})
    as_list = index.near(lat, lon, 4_000.0, [PlaceKind.DEALER, PlaceKind.PARTNER])
    assert as_set == as_list
    assert as_set and {f.kind for f, _ in as_set} <= {PlaceKind.PARTNER, PlaceKind.DEALER}
    # The distances are exactly what the fences themselves say.
    assert all(d == f.distance_m(lat, lon) for f, d in index.near(lat, lon, 4_000.0))


def test_near_ties_are_broken_by_id() -> None:
    fences = [
        Geofence(fid, PlaceKind.FUEL_STATION, fid, Circle(48.15, 11.58, 100.0))
        for fid in ("c", "a", "b")
    ]
    index = GeofenceIndex(fences)
    assert [f.id for f, _ in index.near(48.14, 11.58, 5_000.0)] == ["a", "b", "c"]


def test_points_and_fences_exactly_on_cell_boundaries() -> None:
    cell = 0.01
    fences = []
    # Squares whose edges are exactly on grid lines (as far as 0.01 multiples are exact), and
    # circles centred on grid corners.
    for i in range(-3, 3):
        for j in range(-3, 3):
            lat0, lon0 = round(48.14 + i * cell, 2), round(11.58 + j * cell, 2)
            lat1, lon1 = round(lat0 + cell, 2), round(lon0 + cell, 2)
            corners = ((lat0, lon0), (lat0, lon1), (lat1, lon1), (lat1, lon0))
            fences.append(Geofence(f"sq{i}{j}", PlaceKind.PARTNER, "", Polygon(corners)))
            fences.append(Geofence(f"c{i}{j}", PlaceKind.DEALER, "", Circle(lat0, lon0, 555.0)))
    index = GeofenceIndex(fences, cell_deg=cell)
    points = [
        (round(48.14 + a * cell / 2, 3), round(11.58 + b * cell / 2, 3))
        for a in range(-8, 8)
        for b in range(-8, 8)
    ]
    _assert_containing_matches(index, fences, np.array(points))
    # A grid corner shared by four squares lies on all four.
    assert [f.id for f in index.containing(48.14, 11.58) if f.id.startswith("sq")] == [
        "sq-1-1",
        "sq-10",
        "sq0-1",
        "sq00",
    ]
    for lat, lon in points:
        assert [(f.id, d) for f, d in index.near(lat, lon, 600.0)] == _brute_near(
            fences, lat, lon, 600.0, None
        )


def test_fences_larger_than_many_cells() -> None:
    big_circle = Geofence("big-circle", PlaceKind.PARTNER, "", Circle(48.0, 11.5, 50_000.0))
    big_polygon = Geofence(
        "big-polygon",
        PlaceKind.DEALER,
        "",
        Polygon(((47.5, 10.8), (48.6, 11.0), (48.4, 12.3), (47.9, 11.6), (47.6, 12.0))),
    )
    # Bigger than MAX_CELLS_PER_FENCE cells of 0.01 deg: kept aside, still found.
    huge = Geofence(
        "huge",
        PlaceKind.PARTNER,
        "",
        Polygon(((45.0, 5.0), (55.0, 5.0), (55.0, 15.0), (45.0, 15.0))),
    )
    small = _random_fences(seed=51, count=300)
    fences = [*small, big_circle, big_polygon, huge]
    index = GeofenceIndex(fences)
    rows, cols = 100 * (48.6 - 47.5), 100 * (12.3 - 10.8)
    assert 1_000 < rows * cols < MAX_CELLS_PER_FENCE < 100 * 10 * 100 * 10
    rng = np.random.default_rng(52)
    points = np.column_stack([rng.uniform(47.3, 48.8, 20_000), rng.uniform(10.6, 12.5, 20_000)])
    _assert_containing_matches(index, fences, points)
    assert huge in index.containing(50.0, 10.0)
    assert index.containing(50.0, 10.0) == [huge]
    inside = [f.id for f in index.containing(48.0, 11.5)]
    assert inside == sorted(inside)
    assert inside[0] == "big-circle" and inside[-1] == "huge"


@pytest.mark.parametrize("cell_deg", [0.003, 0.05, 0.5, 7.0])
def test_other_cell_sizes_give_the_same_answers(cell_deg: float) -> None:
    fences = _random_fences(seed=61, count=300)
    index = GeofenceIndex(fences, cell_deg=cell_deg)
    points = _random_points(seed=62, count=3_000)
    _assert_containing_matches(index, fences, points)
    for lat, lon in points.tolist()[:300]:
        assert [(f.id, d) for f, d in index.near(lat, lon, 2_500.0)] == _brute_near(
            fences, lat, lon, 2_500.0, None
        )


def test_near_across_the_antimeridian_and_at_a_pole() -> None:
    east = Geofence("east", PlaceKind.FUEL_STATION, "", Circle(0.0, 179.99, 100.0))
    west = Geofence("west", PlaceKind.FUEL_STATION, "", Circle(0.0, -179.99, 100.0))
    index = GeofenceIndex([east, west])
    assert [f.id for f, _ in index.near(0.0, 179.999, 5_000.0)] == ["east", "west"]
    assert [f.id for f, _ in index.near(0.0, -179.999, 5_000.0)] == ["west", "east"]
    assert {f.id for f, _ in index.near(0.0, 180.0, 1_200.0)} == {"east", "west"}
    polar = Geofence("polar", PlaceKind.PARTNER, "", Circle(89.0, 40.0, 1_000.0))
    index = GeofenceIndex([polar, east])
    assert [f.id for f, _ in index.near(90.0, 0.0, 200_000.0)] == ["polar"]
    assert [f.id for f, _ in index.near(89.5, -140.0, 200_000.0)] == ["polar"]


def test_get_len_and_iteration() -> None:
    fences = _random_fences(seed=71, count=50)
    index = GeofenceIndex(fences)
    assert len(index) == 50
    assert index.get("f00007") is next(f for f in fences if f.id == "f00007")
    assert index.get("nope") is None
    assert [f.id for f in index] == sorted(f.id for f in fences)
    empty = GeofenceIndex([])
    assert len(empty) == 0
    assert empty.containing(*CENTRE) == []
    assert empty.near(*CENTRE, 10_000.0) == []


def test_duplicate_ids_are_refused() -> None:
    a = Geofence("same", PlaceKind.DEALER, "A", Circle(48.1, 11.5, 100.0))
    b = Geofence("same", PlaceKind.PARTNER, "B", Circle(48.2, 11.6, 100.0))
    with pytest.raises(GeoError, match="duplicate geofence id 'same'") as info:
        GeofenceIndex([a, b])
    assert info.value.code == "invalid_geometry"
    assert info.value.value == "same"


@pytest.mark.parametrize("cell_deg", [0.0, -0.01, math.nan, math.inf, 181.0])
def test_bad_cell_sizes_are_refused(cell_deg: float) -> None:
    with pytest.raises(GeoError, match="cell_deg"):
        GeofenceIndex([], cell_deg=cell_deg)


def test_bad_queries_are_refused() -> None:
    index = GeofenceIndex(_random_fences(seed=81, count=10))
    for lat, lon in [(91.0, 11.0), (48.0, -180.5), (math.nan, 11.0), (48.0, math.inf)]:
        with pytest.raises(GeoError, match="out of range"):
            index.containing(lat, lon)
        with pytest.raises(GeoError, match="out of range"):
            index.near(lat, lon, 100.0)
    for radius in (-1.0, math.nan, math.inf):
        with pytest.raises(GeoError, match="radius_m"):
            index.near(*CENTRE, radius)
