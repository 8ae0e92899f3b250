"""Geodesy and geometry of the offers geofences (diagnostics.offers.geo)."""

from __future__ import annotations

import math
import random

import pytest

from diagnostics.offers.geo import (
    EARTH_RADIUS_M,
    Circle,
    GeoError,
    Geofence,
    Polygon,
    bearing_difference_deg,
    haversine_m,
    initial_bearing_deg,
)
from protocol.places import PlaceKind
from simulator.city import destination_point

MARIENPLATZ = (48.137154, 11.576124)
MUNICH_HBF = (48.140228, 11.558338)  # 48 deg 8'25" N, 11 deg 33'30" E


def test_one_degree_of_latitude_is_111_2_km() -> None:
    assert haversine_m(48.0, 11.0, 49.0, 11.0) == pytest.approx(EARTH_RADIUS_M * math.pi / 180)
    assert haversine_m(48.0, 11.0, 49.0, 11.0) == pytest.approx(111_195.08, abs=0.01)
    # Along the equator a degree of longitude is the same length.
    assert haversine_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(111_195.08, abs=0.01)


def test_marienplatz_to_munich_hbf() -> None:
    d = haversine_m(*MARIENPLATZ, *MUNICH_HBF)
    # The equirectangular approximation is exact enough over 1 km to cross-check the formula.
    north = (MUNICH_HBF[0] - MARIENPLATZ[0]) * EARTH_RADIUS_M * math.pi / 180
    east = (
        (MUNICH_HBF[1] - MARIENPLATZ[1])
        * EARTH_RADIUS_M
        * math.pi
        / 180
        * math.cos(math.radians((MUNICH_HBF[0] + MARIENPLATZ[0]) / 2))
    )
    assert d == pytest.approx(math.hypot(north, east), rel=1e-4)
    assert 1_300 < d < 1_400
    assert haversine_m(*MUNICH_HBF, *MARIENPLATZ) == d


def test_haversine_long_distance_reference_and_edge_cases() -> None:
    # Nashville (BNA) to Los Angeles (LAX): 2887.26 km on a sphere of 6372.8 km (the classic
    # reference value), scaled to our radius.
    expected = 2_887_259.95 * EARTH_RADIUS_M / 6_372_800.0
    assert haversine_m(36.12, -86.67, 33.94, -118.40) == pytest.approx(expected, rel=1e-6)
    assert haversine_m(48.1, 11.5, 48.1, 11.5) == 0.0
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_M)
    # Across the antimeridian: 0.2 degrees at the equator, not 359.8.
    assert haversine_m(0.0, 179.9, 0.0, -179.9) == pytest.approx(0.2 * 111_195.08, rel=1e-6)


def test_bearings_of_the_four_directions() -> None:
    lat, lon = MARIENPLATZ
    assert initial_bearing_deg(lat, lon, lat + 0.01, lon) == pytest.approx(0.0, abs=1e-9)
    assert initial_bearing_deg(lat, lon, lat, lon + 0.01) == pytest.approx(90.0, abs=0.01)
    assert initial_bearing_deg(lat, lon, lat - 0.01, lon) == pytest.approx(180.0)
    assert initial_bearing_deg(lat, lon, lat, lon - 0.01) == pytest.approx(270.0, abs=0.01)
    # Same point: no direction, reported as north.
    assert initial_bearing_deg(lat, lon, lat, lon) == 0.0


def test_bearing_of_a_known_pair_and_against_destination_point() -> None:
    # Baghdad (35 N, 45 E) to Osaka (35 N, 135 E): initial bearing 60 deg 09' 45".
    assert initial_bearing_deg(35.0, 45.0, 35.0, 135.0) == pytest.approx(60.1624, abs=1e-4)
    rng = random.Random(7)
    for _ in range(200):
        lat, lon = rng.uniform(-60, 60), rng.uniform(-170, 170)
        bearing = rng.uniform(0, 360)
        lat2, lon2 = destination_point(lat, lon, bearing, rng.uniform(0.1, 50.0))
        got = initial_bearing_deg(lat, lon, lat2, lon2)
        assert 0.0 <= got < 360.0
        assert bearing_difference_deg(got, bearing) < 1e-6


def test_bearing_is_never_360() -> None:
    # A target a hair west of due north: atan2 gives a tiny negative angle, which modulo 360
    # would round to 360.0.
    got = initial_bearing_deg(0.0, 0.0, 10.0, -1e-15)
    assert 0.0 <= got < 360.0


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (350.0, 10.0, 20.0),
        (10.0, 350.0, 20.0),
        (0.0, 180.0, 180.0),
        (90.0, 90.0, 0.0),
        (0.0, 359.5, 0.5),
        (-10.0, 10.0, 20.0),
        (720.0, 181.0, 179.0),
        (270.0, 90.0, 180.0),
    ],
)
def test_bearing_difference_wraps_around(a: float, b: float, expected: float) -> None:
    assert bearing_difference_deg(a, b) == pytest.approx(expected)
    assert 0.0 <= bearing_difference_deg(a, b) <= 180.0


# --- circles -----------------------------------------------------------------------------------


def test_circle_boundary_with_one_metre_margins() -> None:
    circle = Circle(*MARIENPLATZ, 150.0)
    for bearing in (0.0, 45.0, 90.0, 180.0, 271.0):
        inside = destination_point(*MARIENPLATZ, bearing, 0.149)
        outside = destination_point(*MARIENPLATZ, bearing, 0.151)
        assert circle.contains(*inside)
        assert not circle.contains(*outside)
    assert circle.contains(*MARIENPLATZ)
    assert circle.anchor == MARIENPLATZ


def test_circle_boundary_is_inclusive() -> None:
    lat, lon = MARIENPLATZ
    edge = (lat + 0.001, lon)
    circle = Circle(lat, lon, haversine_m(lat, lon, *edge))
    assert circle.contains(*edge)


def test_circle_bbox_is_never_smaller_than_the_circle() -> None:
    rng = random.Random(3)
    for _ in range(300):
        lat, lon = rng.uniform(-80, 80), rng.uniform(-170, 170)
        radius = rng.uniform(1.0, 50_000.0)
        try:
            circle = Circle(lat, lon, radius)
        except GeoError:
            continue  # the antimeridian or a pole: refused, see below
        min_lat, min_lon, max_lat, max_lon = circle.bbox()
        for k in range(72):
            # Points exactly on the rim (and the rim's extremes in longitude, north of the
            # centre's parallel) must be inside the box.
            p = destination_point(lat, lon, k * 5.0, radius / 1000.0 * (1 - 1e-12))
            assert min_lat <= p[0] <= max_lat and min_lon <= p[1] <= max_lon
        # ...and the box is not much bigger than needed (tight in latitude).
        assert (max_lat - min_lat) * 111_195.08 == pytest.approx(2 * radius, rel=1e-6)


def test_circle_contains_is_exactly_the_haversine_test() -> None:
    """contains() settles misses with the circle's box first; that shortcut must never change
    an answer, least of all near the rim and the box's corners."""
    rng = random.Random(5)
    for _ in range(50):
        lat, lon = rng.uniform(-70, 70), rng.uniform(-170, 170)
        circle = Circle(lat, lon, rng.uniform(1.0, 50_000.0))
        min_lat, min_lon, max_lat, max_lon = circle.bbox()
        for _ in range(400):
            p_lat = rng.choice((min_lat, max_lat, lat)) + rng.gauss(0, 1e-4)
            p_lon = rng.choice((min_lon, max_lon, lon)) + rng.gauss(0, 1e-4)
            expected = haversine_m(lat, lon, p_lat, p_lon) <= circle.radius_m
            assert circle.contains(p_lat, p_lon) == expected
        for bearing in range(0, 360, 10):
            for km in (circle.radius_m / 1000 * (1 - 1e-9), circle.radius_m / 1000 * (1 + 1e-9)):
                p_lat, p_lon = destination_point(lat, lon, bearing, km)
                expected = haversine_m(lat, lon, p_lat, p_lon) <= circle.radius_m
                assert circle.contains(p_lat, p_lon) == expected


def test_circle_bbox_is_wider_than_the_latitude_span_suggests() -> None:
    # The widest longitude of a cap lies north of the centre's parallel (asin, not a simple
    # scaled radius): a box from dlat / cos(lat) would clip it at high latitudes.
    circle = Circle(70.0, 20.0, 50_000.0)
    _, min_lon, _, max_lon = circle.bbox()
    rim = [destination_point(70.0, 20.0, b / 10, 50.0)[1] for b in range(3600)]
    assert min_lon <= min(rim) and max_lon >= max(rim)
    naive = math.degrees(50_000.0 / EARTH_RADIUS_M) / math.cos(math.radians(70.0))
    assert max_lon - 20.0 > naive


@pytest.mark.parametrize(
    ("lat", "lon", "radius", "problem"),
    [
        (91.0, 11.0, 100.0, "latitude"),
        (48.0, 181.0, 100.0, "longitude"),
        (math.nan, 11.0, 100.0, "finite"),
        (48.0, math.inf, 100.0, "finite"),
        (48.0, 11.0, 0.0, "radius_m"),
        (48.0, 11.0, -5.0, "radius_m"),
        (48.0, 11.0, 50_000.1, "radius_m"),
        (48.0, 11.0, math.nan, "finite"),
        (0.0, 179.9, 20_000.0, "antimeridian"),
        (89.9, 0.0, 20_000.0, "pole"),
        ("48", 11.0, 100.0, "number"),
        (True, 11.0, 100.0, "number"),
    ],
)
def test_circle_refuses_bad_values(lat: object, lon: object, radius: object, problem: str) -> None:
    with pytest.raises(GeoError, match=problem) as info:
        Circle(lat, lon, radius)  # type: ignore[arg-type]
    assert info.value.code == "invalid_geometry"


def test_circle_accepts_the_largest_radius_and_normalises_ints() -> None:
    circle = Circle(48, 11, 50_000)
    assert circle == Circle(48.0, 11.0, 50_000.0)
    assert isinstance(circle.lat, float) and isinstance(circle.radius_m, float)


# --- polygons ----------------------------------------------------------------------------------

SQUARE = ((48.0, 11.0), (48.0, 11.02), (48.02, 11.02), (48.02, 11.0))


def test_polygon_inside_and_outside() -> None:
    square = Polygon(SQUARE)
    assert square.contains(48.01, 11.01)
    assert not square.contains(48.03, 11.01)
    assert not square.contains(48.01, 10.99)
    assert not square.contains(47.99, 11.03)
    assert square.bbox() == (48.0, 11.0, 48.02, 11.02)
    assert square.anchor == pytest.approx((48.01, 11.01))


def test_polygon_edges_and_vertices_are_inside() -> None:
    square = Polygon(SQUARE)
    for lat, lon in SQUARE:
        assert square.contains(lat, lon)  # vertices
    assert square.contains(48.0, 11.01)  # bottom edge
    assert square.contains(48.02, 11.01)  # top edge (the ray's half-open rule must not drop it)
    assert square.contains(48.01, 11.0)  # left edge
    assert square.contains(48.01, 11.02)  # right edge
    # Just beyond an edge is outside.
    assert not square.contains(48.02 + 1e-7, 11.01)
    assert not square.contains(48.01, 11.02 + 1e-7)


def test_polygon_diagonal_edge_counts_as_inside_despite_rounding() -> None:
    triangle = Polygon(((0.0, 0.0), (0.3, 0.1), (0.0, 0.1)))
    # 0.1 and 0.3 are not exact in binary; the point is on the hypotenuse in the reals.
    for t in (0.1, 0.25, 0.5, 0.7, 0.9):
        assert triangle.contains(0.3 * t, 0.1 * t)
    assert not triangle.contains(0.3 * 0.5 + 1e-6, 0.05)


def test_concave_u_shape_notch_is_outside() -> None:
    # A U: two arms (lon 0-1 and 2-3) joined by a base (lat 0-1), open at the top.
    u_shape = Polygon(
        (
            (0.0, 0.0),
            (0.0, 3.0),
            (3.0, 3.0),
            (3.0, 2.0),
            (1.0, 2.0),
            (1.0, 1.0),
            (3.0, 1.0),
            (3.0, 0.0),
        )
    )
    assert u_shape.contains(2.0, 0.5)  # left arm
    assert u_shape.contains(2.0, 2.5)  # right arm
    assert u_shape.contains(0.5, 1.5)  # base
    assert not u_shape.contains(2.0, 1.5)  # the notch
    assert not u_shape.contains(1.0 + 1e-9 * 10, 1.5)  # just above the notch's floor
    assert u_shape.contains(1.0, 1.5)  # the notch's floor is an edge
    assert u_shape.contains(2.0, 1.0)  # the notch's side is an edge
    # A ray from inside the notch crosses both of the right arm's vertical edges.
    assert not u_shape.contains(3.0 - 1e-6, 1.5)
    # Rays through vertices (lat 1.0 and 3.0 hit several) count them once.
    assert u_shape.contains(1.0, 0.5)
    assert u_shape.contains(3.0, 0.5)
    assert not u_shape.contains(3.0, 1.5)  # top of the notch, between the arms


def test_hole_is_outside_but_its_edge_is_inside() -> None:
    hole = ((48.005, 11.005), (48.005, 11.015), (48.015, 11.015), (48.015, 11.005))
    donut = Polygon(SQUARE, (hole,))
    assert not donut.contains(48.01, 11.01)  # in the hole
    assert donut.contains(48.002, 11.01)  # in the ring
    assert donut.contains(48.005, 11.01)  # on the hole's edge
    assert donut.contains(48.015, 11.015)  # on the hole's vertex
    assert donut.contains(48.0, 11.0)  # exterior vertex
    assert not donut.contains(48.03, 11.01)
    # The anchor is the exterior's centroid, in the hole or not: it names where the place is.
    assert donut.anchor == pytest.approx((48.01, 11.01))


def test_closing_vertex_is_normalised() -> None:
    open_ring = Polygon(SQUARE)
    closed_ring = Polygon((*SQUARE, SQUARE[0]))
    assert closed_ring == open_ring
    assert closed_ring.exterior == SQUARE
    as_lists = Polygon([list(v) for v in (*SQUARE, SQUARE[0])])  # type: ignore[arg-type]
    assert as_lists == open_ring and hash(as_lists) == hash(open_ring)
    holed = Polygon(
        SQUARE, (((48.005, 11.005), (48.005, 11.01), (48.01, 11.01), (48.005, 11.005)),)
    )
    assert len(holed.holes[0]) == 3


def test_anchor_of_an_l_shape_is_its_area_centroid() -> None:
    # Three unit squares with (lat, lon) corners (0, 0), (0, 1), (1, 0): the centroid is the
    # mean of their centres, ((0.5 + 0.5 + 1.5) / 3, (0.5 + 1.5 + 0.5) / 3).
    l_shape = Polygon(((0.0, 0.0), (0.0, 2.0), (1.0, 2.0), (1.0, 1.0), (2.0, 1.0), (2.0, 0.0)))
    assert l_shape.anchor == pytest.approx((2.5 / 3, 2.5 / 3))
    # Orientation does not matter.
    reversed_l = Polygon(tuple(reversed(l_shape.exterior)))
    assert reversed_l.anchor == pytest.approx(l_shape.anchor)


def test_anchor_of_a_zero_area_bowtie_falls_back_to_the_vertex_mean() -> None:
    bowtie = Polygon(((0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)))
    assert bowtie.anchor == pytest.approx((0.5, 0.5))
    # The lobes are the triangles on the lat 0 and lat 1 edges; between them, outside.
    assert bowtie.contains(0.2, 0.5) and bowtie.contains(0.8, 0.5)
    assert not bowtie.contains(0.5, 0.2) and not bowtie.contains(0.5, 0.8)
    assert bowtie.contains(0.5, 0.5)  # the crossing point lies on two edges


@pytest.mark.parametrize(
    ("exterior", "problem"),
    [
        (((48.0, 11.0), (48.0, 11.01)), "3 distinct"),
        (((48.0, 11.0), (48.0, 11.01), (48.0, 11.0)), "3 distinct"),
        (((48.0, 11.0), (48.0, 11.01), (48.0, 11.01), (48.0, 11.0)), "3 distinct"),
        (((48.0, 11.0), (48.0, 11.01), (48.0, 11.02)), "degenerate"),
        (((48.0, 11.0), (48.01, 11.01), (48.02, 11.02), (48.03, 11.03)), "degenerate"),
        (((48.0, 11.0), (48.0, 11.01), (91.0, 11.0)), "latitude"),
        (((48.0, 11.0), (48.0, 181.0), (48.1, 11.0)), "longitude"),
        (((48.0, 11.0), (48.0, math.nan), (48.1, 11.0)), "finite"),
        (((48.0, 11.0), (48.0, math.inf), (48.1, 11.0)), "finite"),
        (((0.0, -170.0), (0.0, 170.0), (1.0, 170.0)), "180 degrees"),
        (((48.0, 11.0), (48.0,), (48.1, 11.0)), "pair"),
        (((48.0, 11.0), "ab", (48.1, 11.0)), "pair"),
        (((48.0, 11.0), ("48", 11.1), (48.1, 11.0)), "number"),
        ("POLYGON", "sequence"),
        ((), "3 distinct"),
    ],
)
def test_polygon_refuses_degenerate_and_invalid_rings(exterior: object, problem: str) -> None:
    with pytest.raises(GeoError, match=problem) as info:
        Polygon(exterior)  # type: ignore[arg-type]
    assert info.value.code == "invalid_geometry"


def test_polygon_refuses_a_bad_hole() -> None:
    with pytest.raises(GeoError, match="hole 0 needs at least 3"):
        Polygon(SQUARE, (((48.005, 11.005), (48.006, 11.006)),))
    with pytest.raises(GeoError, match="holes must be"):
        Polygon(SQUARE, "x")  # type: ignore[arg-type]


def test_polygon_spanning_exactly_180_degrees_is_accepted() -> None:
    Polygon(((0.0, -90.0), (0.0, 90.0), (10.0, 0.0)))


# --- geofences ---------------------------------------------------------------------------------


def test_geofence_delegates_and_measures_to_the_anchor() -> None:
    fence = Geofence("fuel-001", PlaceKind.FUEL_STATION, "Aral", Circle(*MARIENPLATZ, 150.0))
    assert fence.contains(*MARIENPLATZ)
    assert not fence.contains(*MUNICH_HBF)
    assert fence.distance_m(*MUNICH_HBF) == haversine_m(*MUNICH_HBF, *MARIENPLATZ)
    assert fence.brand == "" and fence.partner_id is None
    zone = Geofence("zone:1", PlaceKind.DEALER, "Yard", Polygon(SQUARE))
    assert zone.distance_m(48.01, 11.01) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"id": ""}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"id": "has space"}, "id"),
        ({"id": "slash/no"}, "id"),
        ({"id": "ok\n"}, "id"),
        ({"kind": "fuel_station"}, "PlaceKind"),
        ({"name": None}, "name"),
        ({"geometry": (48.0, 11.0)}, "Circle or Polygon"),
        ({"brand": None}, "brand"),
        ({"partner_id": ""}, "partner_id"),
    ],
)
def test_geofence_refuses_bad_fields(changes: dict[str, object], problem: str) -> None:
    fields: dict[str, object] = {
        "id": "fuel-001",
        "kind": PlaceKind.FUEL_STATION,
        "name": "Aral",
        "geometry": Circle(48.0, 11.0, 100.0),
    }
    fields.update(changes)
    with pytest.raises(GeoError, match=problem) as info:
        Geofence(**fields)  # type: ignore[arg-type]
    assert info.value.code == "invalid_geometry"


def test_geofence_ids_may_use_the_whole_alphabet() -> None:
    fence = Geofence("A-z_0.9:" + "x" * 56, PlaceKind.PARTNER, "", Circle(48.0, 11.0, 100.0))
    assert len(fence.id) == 64
