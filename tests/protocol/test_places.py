"""Shared place data (protocol.places) and its generator (simulator.tools.make_places)."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources

import pytest

from protocol.places import (
    InvalidPlaceError,
    PlaceKind,
    load_places,
    nearest,
    place_from_feature,
    places_to_geojson,
)
from simulator.city import MUNICH
from simulator.tools.make_places import build_places


def test_munich_has_the_places_the_backend_and_routines_need() -> None:
    counts = Counter(p.kind for p in load_places())
    assert counts[PlaceKind.FUEL_STATION] == 40
    assert counts[PlaceKind.CHARGING_STATION] == 40
    assert counts[PlaceKind.DEALER] == 8
    assert counts[PlaceKind.SERVICE_CENTRE] == 10
    assert counts[PlaceKind.PARTNER] >= 3


def test_every_place_lies_in_the_city_and_service_centres_are_bookable() -> None:
    places = load_places("munich")
    assert len({p.id for p in places}) == len(places)
    for place in places:
        assert MUNICH.contains(place.lat, place.lon), place
    centres = [p for p in places if p.kind is PlaceKind.SERVICE_CENTRE]
    assert all(c.bays > 0 and c.opening_hours and c.skills for c in centres)
    assert any("ev_high_voltage" in c.skills for c in centres)
    assert all(p.max_power_kw for p in places if p.kind is PlaceKind.CHARGING_STATION)


def test_file_is_plain_geojson_with_lon_lat_order() -> None:
    text = resources.files("protocol").joinpath("data", "places_munich.geojson").read_text()
    collection = json.loads(text)
    assert collection["type"] == "FeatureCollection"
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        lon, lat = feature["geometry"]["coordinates"]
        assert 11.0 < lon < 12.0 and 47.9 < lat < 48.4  # [lon, lat] per RFC 7946


def test_committed_file_is_what_the_generator_makes() -> None:
    text = resources.files("protocol").joinpath("data", "places_munich.geojson").read_text()
    assert text == places_to_geojson(build_places())


def test_places_round_trip_through_features() -> None:
    for place in load_places():
        assert place_from_feature(place.to_feature()) == place


@pytest.mark.parametrize(
    "feature",
    [
        None,
        {"id": "x", "geometry": {"type": "LineString", "coordinates": []}, "properties": {}},
        {"id": "x", "geometry": {"type": "Point", "coordinates": [11.5, 48.1]},
         "properties": {"kind": "spaceport", "name": "n", "brand": "b"}},
        {"id": "x", "geometry": {"type": "Point", "coordinates": [11.5, 148.1]},
         "properties": {"kind": "dealer", "name": "n", "brand": "b"}},
        {"id": "x", "geometry": {"type": "Point", "coordinates": [11.5, 48.1]},
         "properties": {"kind": "service_centre", "name": "n", "brand": "b"}},
    ],
)  # fmt: skip
def test_bad_features_are_refused(feature: object) -> None:
    with pytest.raises(InvalidPlaceError) as caught:
        place_from_feature(feature)
    assert caught.value.code == "invalid_place"


def test_unknown_city_is_a_typed_error() -> None:
    with pytest.raises(InvalidPlaceError):
        load_places("atlantis")


def test_nearest_finds_the_closest_place_of_a_kind() -> None:
    places = load_places()
    station = nearest(places, MUNICH.center_lat, MUNICH.center_lon, PlaceKind.FUEL_STATION)
    assert station is not None and station.kind is PlaceKind.FUEL_STATION
    best = min(
        (p for p in places if p.kind is PlaceKind.FUEL_STATION),
        key=lambda p: MUNICH.distance_from_center_km(p.lat, p.lon),
    )
    assert station == best
