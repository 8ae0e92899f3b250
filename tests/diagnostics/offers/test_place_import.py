"""Geofences from GeoJSON, CSV and the shipped places (diagnostics.offers.place_import)."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest

from diagnostics.offers.geo import Circle, GeoError, Polygon
from diagnostics.offers.geo_index import GeofenceIndex
from diagnostics.offers.place_import import (
    DEFAULT_RADIUS_M,
    MAX_PLACES,
    PlaceImportError,
    geofences_from_csv,
    geofences_from_geojson,
    geofences_from_places,
)
from protocol.places import Place, PlaceKind, load_places

# GeoJSON positions are [lon, lat].
YARD_RING = [[11.58, 48.14], [11.59, 48.14], [11.59, 48.15], [11.58, 48.15], [11.58, 48.14]]
YARD_HOLE = [[11.584, 48.144], [11.586, 48.144], [11.586, 48.146], [11.584, 48.146]]


def _point(fid: object = "fuel-1", **properties: Any) -> dict[str, Any]:
    props = {"kind": "fuel_station", "name": "Aral Ring", "brand": "Aral", **properties}
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Point", "coordinates": [11.576, 48.137]},
        "properties": props,
    }


def _collection(*features: object) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def test_good_geojson_points_and_a_polygon_with_a_hole() -> None:
    yard = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [YARD_RING, YARD_HOLE]},
        "properties": {"id": "dealer:7", "kind": "dealer", "name": "BMW Yard", "partner_id": "bmw"},
    }
    charger = _point("swm-12", kind="charging_station", name="SWM", radius_m=40, brand="SWM")
    charger["geometry"]["coordinates"] = [11.60, 48.12, 520.0]  # altitude is allowed, ignored
    fences = geofences_from_geojson(_collection(_point(), yard, charger).encode())
    assert [f.id for f in fences] == ["fuel-1", "dealer:7", "swm-12"]
    fuel, dealer, swm = fences
    assert fuel.kind is PlaceKind.FUEL_STATION and fuel.name == "Aral Ring"
    assert fuel.brand == "Aral" and fuel.partner_id is None
    assert fuel.geometry == Circle(48.137, 11.576, DEFAULT_RADIUS_M)  # lat/lon swapped back
    assert swm.geometry == Circle(48.12, 11.60, 40.0)
    assert isinstance(dealer.geometry, Polygon)
    assert dealer.partner_id == "bmw" and dealer.brand == ""
    assert dealer.geometry.exterior[0] == (48.14, 11.58)
    assert len(dealer.geometry.exterior) == 4  # closing vertex dropped
    assert dealer.contains(48.142, 11.582)
    assert not dealer.contains(48.145, 11.585)  # in the hole
    assert dealer.contains(48.144, 11.585)  # on the hole's edge


def test_a_single_feature_and_a_default_radius() -> None:
    [fence] = geofences_from_geojson(json.dumps(_point(17)), default_radius_m=75.0)
    assert fence.id == "17"  # numeric ids are allowed by RFC 7946
    assert fence.geometry == Circle(48.137, 11.576, 75.0)


def test_good_csv_with_a_wkt_polygon_row() -> None:
    text = (
        "\ufeffid,kind,name,lat,lon,radius_m,brand,partner_id,wkt,notes\r\n"
        "fuel-1,fuel_station,Aral Ring,48.137,11.576,,Aral,,,corner shop\r\n"
        "\r\n"
        'swm-12,charging_station,"SWM, Olympiapark",48.17,11.55,40,SWM,swm,,\r\n'
        "dealer:7,dealer,BMW Yard,,,,BMW,,"
        '"POLYGON ((11.58 48.14, 11.59 48.14, 11.59 48.15, 11.58 48.15, 11.58 48.14),'
        '(11.584 48.144, 11.586 48.144, 11.586 48.146, 11.584 48.146))",\r\n'
    )
    fences = geofences_from_csv(text.encode("utf-8"))
    assert [f.id for f in fences] == ["fuel-1", "swm-12", "dealer:7"]
    fuel, swm, dealer = fences
    assert fuel.geometry == Circle(48.137, 11.576, DEFAULT_RADIUS_M)
    assert fuel.brand == "Aral" and fuel.partner_id is None
    assert swm.name == "SWM, Olympiapark" and swm.partner_id == "swm"
    assert swm.geometry == Circle(48.17, 11.55, 40.0)
    assert dealer.geometry == Polygon(
        ((48.14, 11.58), (48.14, 11.59), (48.15, 11.59), (48.15, 11.58)),
        (((48.144, 11.584), (48.144, 11.586), (48.146, 11.586), (48.146, 11.584)),),
    )
    assert not dealer.contains(48.145, 11.585)


def test_csv_with_wkt_only_needs_no_lat_lon_columns() -> None:
    text = 'ID , Kind,Name,WKT\nz1,partner,Zone,"polygon((11 48,11.1 48,11.1 48.1))"\n'
    [zone] = geofences_from_csv(text)
    assert zone.geometry == Polygon(((48.0, 11.0), (48.0, 11.1), (48.1, 11.1)))


def test_the_shipped_munich_places() -> None:
    places = load_places("munich")
    fences = geofences_from_places(places)
    assert len(fences) == 104 == len(places)
    assert Counter(f.kind for f in fences) == Counter(p.kind for p in places)
    for place, fence in zip(places, fences, strict=True):
        assert fence.id == place.id and fence.name == place.name and fence.brand == place.brand
        assert fence.geometry == Circle(place.lat, place.lon, DEFAULT_RADIUS_M)
        assert fence.partner_id is None
    index = GeofenceIndex(fences)
    station = next(p for p in places if p.kind is PlaceKind.FUEL_STATION)
    assert station.id in {f.id for f in index.containing(station.lat, station.lon)}
    # The same places through GeoJSON give the same fences.
    text = json.dumps({"type": "FeatureCollection", "features": [p.to_feature() for p in places]})
    assert geofences_from_geojson(text) == fences


def test_shipped_places_with_a_custom_radius() -> None:
    fences = geofences_from_places(load_places("munich")[:3], default_radius_m=300)
    assert all(isinstance(f.geometry, Circle) and f.geometry.radius_m == 300 for f in fences)


# --- refusals: GeoJSON ---------------------------------------------------------------------


def _refused_geojson(data: str | bytes, problem: str, feature: int | None) -> PlaceImportError:
    with pytest.raises(PlaceImportError, match=problem) as info:
        geofences_from_geojson(data)
    error = info.value
    assert error.code == "invalid_places"
    assert isinstance(error, GeoError)  # one except clause catches every geometry problem
    assert error.feature == feature and error.line is None
    if feature is not None:
        assert str(error).startswith(f"feature {feature}: ")
    return error


def test_geojson_refuses_bad_json() -> None:
    error = _refused_geojson('{"type": "FeatureCollection", "features": [}', "invalid JSON", None)
    assert "line 1" in str(error)
    _refused_geojson(b"\xff\xfe{}", "not UTF-8", None)
    _refused_geojson("[" * 100_000 + "]" * 100_000, "invalid JSON", None)


def test_geojson_refuses_what_is_not_a_feature_collection() -> None:
    _refused_geojson(
        '{"type": "Point", "coordinates": [1, 2]}', "FeatureCollection or Feature", None
    )
    _refused_geojson("[]", "FeatureCollection or Feature", None)
    _refused_geojson('{"type": "FeatureCollection"}', "'features' list", None)
    _refused_geojson(_collection(_point(), [1, 2]), "not a GeoJSON Feature", 1)


def test_geojson_refuses_an_unknown_kind() -> None:
    error = _refused_geojson(_collection(_point(), _point("x", kind="car_wash")), "unknown kind", 1)
    assert "'car_wash'" in str(error) and "fuel_station" in str(error)
    assert error.value == "car_wash"


@pytest.mark.parametrize(
    ("feature", "problem"),
    [
        (_point(None), "missing id"),
        (_point(""), "missing id"),
        (_point("a b"), "geofence id 'a b'"),
        (_point(kind=None), "missing kind"),
        (_point(name=None), "missing name"),
        (_point(name="  "), "missing name"),
        (_point(name=5), "name must be a string"),
        (_point(brand=5), "brand must be a string"),
        ({**_point(), "properties": {}}, "missing kind"),
        ({**_point(), "properties": None}, "missing properties"),
        ({**_point(), "geometry": None}, "missing geometry"),
        (
            {**_point(), "geometry": {"type": "LineString", "coordinates": []}},
            "unsupported geometry",
        ),
        ({**_point(), "geometry": {"type": "Point", "coordinates": [11.5]}}, r"\[lon, lat\]"),
        ({**_point(), "geometry": {"type": "Polygon", "coordinates": []}}, "list of rings"),
        ({**_point(), "geometry": {"type": "Polygon", "coordinates": [5]}}, "ring 0"),
        (
            {**_point(), "geometry": {"type": "Polygon", "coordinates": [[[1, 2], [3]]]}},
            "position 1 of ring 0",
        ),
    ],
)
def test_geojson_refuses_missing_fields(feature: dict[str, Any], problem: str) -> None:
    _refused_geojson(_collection(_point("ok"), feature), problem, 1)


@pytest.mark.parametrize(
    ("coordinates", "radius", "problem"),
    [
        ([11.5, 91.0], None, "latitude 91.0 out of range"),
        ([181.0, 48.0], None, "longitude 181.0 out of range"),
        (["11.5", 48.0], None, "longitude must be a number"),
        ([11.5, True], None, "latitude must be a number"),
        ([11.5, 48.0], 0, "radius_m 0.0 out of range"),
        ([11.5, 48.0], 60_000, "radius_m 60000.0 out of range"),
        ([11.5, 48.0], "big", "radius_m must be a number"),
    ],
)
def test_geojson_refuses_bad_numbers(coordinates: list[Any], radius: object, problem: str) -> None:
    feature = _point("bad") if radius is None else _point("bad", radius_m=radius)
    feature["geometry"]["coordinates"] = coordinates
    _refused_geojson(_collection(feature), problem, 0)


def test_geojson_refuses_non_finite_numbers() -> None:
    # Python's json reads (and writes) NaN and Infinity literals; they must not become
    # coordinates.
    bad = _point("nan")
    bad["geometry"]["coordinates"] = [11.5, math.nan]
    text = _collection(_point("ok"), bad)
    assert "NaN" in text
    _refused_geojson(text, "latitude must be finite", 1)
    ring = [list(p) for p in YARD_RING]
    ring[1][0] = math.inf
    polygon = {**_point("p"), "geometry": {"type": "Polygon", "coordinates": [ring]}}
    _refused_geojson(_collection(polygon), "longitude must be finite", 0)


def test_geojson_refuses_an_invalid_polygon() -> None:
    degenerate = {
        **_point("p"),
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[11.5, 48.0], [11.6, 48.0], [11.5, 48.0]]],
        },
    }
    _refused_geojson(_collection(degenerate), "3 distinct vertices", 0)


def test_geojson_refuses_duplicate_ids() -> None:
    error = _refused_geojson(
        _collection(_point("a"), _point("b"), _point("a")), "duplicate id 'a'", 2
    )
    assert "first in feature 0" in str(error)


def test_geojson_refuses_more_than_max_places() -> None:
    features = [_point(f"p{i}") for i in range(MAX_PLACES + 1)]
    _refused_geojson(_collection(*features), f"more than {MAX_PLACES}", MAX_PLACES)
    assert len(geofences_from_geojson(_collection(*features[:MAX_PLACES]))) == MAX_PLACES


# --- refusals: CSV -------------------------------------------------------------------------

HEADER = "id,kind,name,lat,lon,radius_m,brand,partner_id,wkt\n"
GOOD_ROW = "ok,dealer,Dealer,48.1,11.5,,,,\n"


def _refused_csv(data: str | bytes, problem: str, line: int | None) -> PlaceImportError:
    with pytest.raises(PlaceImportError, match=problem) as info:
        geofences_from_csv(data)
    error = info.value
    assert error.code == "invalid_places"
    assert error.line == line and error.feature is None
    if line is not None:
        assert str(error).startswith(f"line {line}: ")
    return error


def test_csv_refuses_a_missing_or_bad_header() -> None:
    _refused_csv("", "header row is required", 1)
    _refused_csv("id,kind,name,lat\nx,dealer,D,48\n", "missing column", 1)
    error = _refused_csv("id,name,lat,lon\n", "missing column", 1)
    assert "kind" in str(error)
    _refused_csv("id,kind,name,lat,lon,lat\n", "duplicate column 'lat'", 1)


def test_csv_refuses_bad_csv() -> None:
    _refused_csv(HEADER + GOOD_ROW + 'x,dealer,"D"oops,48.1,11.5,,,,\n', "invalid CSV", 3)
    _refused_csv(b"id,kind,name,lat,lon\n\xe9,dealer,D,48,11\n", "not UTF-8", None)
    _refused_csv(HEADER + GOOD_ROW + "x,dealer,D,48.1\n", "expected 9 fields, got 4", 3)


def test_csv_refuses_an_unknown_kind() -> None:
    error = _refused_csv(HEADER + GOOD_ROW + "x,carwash,D,48.1,11.5,,,,\n", "unknown kind", 3)
    assert "'carwash'" in str(error)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (",dealer,D,48.1,11.5,,,,", "missing id"),
        ("x,,D,48.1,11.5,,,,", "missing kind"),
        ("x,dealer,,48.1,11.5,,,,", "missing name"),
        ("x,dealer,D,,11.5,,,,", "missing lat"),
        ("x,dealer,D,48.1,,,,,", "missing lon"),
        ("x y,dealer,D,48.1,11.5,,,,", "geofence id 'x y'"),
    ],
)
def test_csv_refuses_missing_fields(row: str, problem: str) -> None:
    _refused_csv(HEADER + GOOD_ROW + row + "\n", problem, 3)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("x,dealer,D,north,11.5,,,,", "lat 'north' is not a number"),
        ("x,dealer,D,nan,11.5,,,,", "latitude must be finite"),
        ("x,dealer,D,48.1,inf,,,,", "longitude must be finite"),
        ("x,dealer,D,-90.5,11.5,,,,", "latitude -90.5 out of range"),
        ("x,dealer,D,48.1,-181,,,,", "longitude -181.0 out of range"),
        ("x,dealer,D,48.1,11.5,-3,,,", "radius_m -3.0 out of range"),
        ("x,dealer,D,48.1,11.5,1e9,,,", "radius_m 1000000000.0 out of range"),
        ("x,dealer,D,48.1,11.5,NaN,,,", "radius_m must be finite"),
    ],
)
def test_csv_refuses_bad_numbers(row: str, problem: str) -> None:
    _refused_csv(HEADER + GOOD_ROW + row + "\n", problem, 3)


@pytest.mark.parametrize(
    ("wkt", "problem"),
    [
        ("POINT (11.5 48.1)", "wkt must be POLYGON"),
        ("POLYGON EMPTY", "wkt must be POLYGON"),
        ("POLYGON ((11.5 48.1, 11.6 48.1, 11.6 48.2)", "wkt must be POLYGON"),
        ("POLYGON ((11.5 48.1, 11.6, 11.6 48.2))", "wkt position '11.6' is not 'lon lat'"),
        ("POLYGON ((11.5 48.1, 11.6 x, 11.6 48.2))", "wkt coordinate 'x' is not a number"),
        ("POLYGON ((11.5 48.1, 11.6 48.1, 11.5 48.1))", "3 distinct vertices"),
        ("POLYGON ((11.5 48.1, 11.6 95, 11.6 48.2))", "latitude 95.0 out of range"),
    ],
)
def test_csv_refuses_bad_wkt(wkt: str, problem: str) -> None:
    _refused_csv(HEADER + GOOD_ROW + f'x,dealer,D,,,,,,"{wkt}"\n', problem, 3)


def test_csv_refuses_lat_lon_and_wkt_together() -> None:
    row = 'x,dealer,D,48.1,11.5,,,,"POLYGON ((11.5 48.1, 11.6 48.1, 11.6 48.2))"\n'
    _refused_csv(HEADER + GOOD_ROW + row, "either lat/lon or wkt", 3)


def test_csv_refuses_duplicate_ids_naming_both_lines() -> None:
    # A quoted field spanning two physical lines: line numbers are physical, as an editor
    # shows them.
    text = HEADER + GOOD_ROW + 'y,dealer,"Two\nLines",48.1,11.5,,,,\n' + GOOD_ROW
    error = _refused_csv(text, "duplicate id 'ok'", 5)
    assert "first on line 2" in str(error)


def test_csv_refuses_more_than_max_places() -> None:
    rows = "".join(f"p{i},partner,P,48.1,11.5,,,,\n" for i in range(MAX_PLACES + 1))
    _refused_csv(HEADER + rows, f"more than {MAX_PLACES}", MAX_PLACES + 2)


# --- refusals: places and options ----------------------------------------------------------


def test_places_refuses_duplicates_and_bad_ids() -> None:
    place = load_places("munich")[0]
    with pytest.raises(PlaceImportError, match="duplicate id") as info:
        geofences_from_places([place, load_places("munich")[1], place])
    assert info.value.feature == 2 and info.value.code == "invalid_places"
    odd = Place("has space", PlaceKind.PARTNER, "P", 48.1, 11.5, "B")
    with pytest.raises(PlaceImportError, match="geofence id") as info:
        geofences_from_places([odd])
    assert info.value.feature == 0


@pytest.mark.parametrize("radius", [0.0, -1.0, math.nan, math.inf, 50_001.0])
def test_a_bad_default_radius_is_refused(radius: float) -> None:
    for load in (geofences_from_csv, geofences_from_geojson):
        with pytest.raises(PlaceImportError, match="default_radius_m") as info:
            load("", default_radius_m=radius)
        assert info.value.line is None and info.value.feature is None
    with pytest.raises(PlaceImportError, match="default_radius_m"):
        geofences_from_places([], default_radius_m=radius)
