"""Fleet composition (simulator.fleet) and the city geometry it builds on (simulator.city)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.catalogue import Powertrain
from protocol.vin import Vin
from simulator.city import (
    BERLIN,
    MUNICH,
    City,
    bearing_deg,
    destination_point,
    haversine_km,
    random_point,
)
from simulator.fleet import MODELS, POWERTRAIN_MIX, VehicleProfile, build_fleet, model_year_code

# ---------------------------------------------------------------------------------- fleet


def test_build_fleet_is_deterministic() -> None:
    assert build_fleet(50, seed=3) == build_fleet(50, seed=3)


def test_prefix_of_a_fleet_is_the_smaller_fleet() -> None:
    # Growing a demo fleet must not change the cars it already had.
    assert build_fleet(100, seed=5)[:40] == build_fleet(40, seed=5)


def test_thousand_vins_are_unique_with_valid_check_digits() -> None:
    fleet = build_fleet(1000, seed=1)
    vins = [p.vin for p in fleet]
    assert len(set(vins)) == 1000
    for vin in vins:
        assert isinstance(vin, Vin)
        assert vin.has_valid_check_digit, vin


def test_different_seeds_rarely_share_a_vin() -> None:
    a = {p.vin for p in build_fleet(1000, seed=1)}
    b = {p.vin for p in build_fleet(1000, seed=2)}
    assert len(a & b) <= 2
    assert build_fleet(1, seed=1)[0].vin != build_fleet(1, seed=2)[0].vin


def test_powertrain_mix_of_a_thousand_cars() -> None:
    counts = Counter(p.powertrain for p in build_fleet(1000, seed=11))
    for powertrain, share in POWERTRAIN_MIX:
        # Binomial standard deviation for n=1000 is at most 1.6 percentage points.
        assert abs(counts[powertrain] / 1000 - share) < 0.05, (powertrain, counts)


def test_fleet_mixes_brands_models_and_years() -> None:
    fleet = build_fleet(1000, seed=4)
    assert len({p.brand for p in fleet}) >= 8
    assert len({p.model for p in fleet}) >= 20
    assert len({p.model_year for p in fleet}) >= 8


def test_vin_encodes_wmi_and_model_year() -> None:
    wmis = {(m.brand, m.model): m.wmi for m in MODELS}
    for p in build_fleet(300, seed=9):
        assert p.vin.wmi == wmis[(p.brand, p.model)]
        assert p.vin[9] == model_year_code(p.model_year)


def test_model_year_codes() -> None:
    # 49 CFR 565.15 table: 2010 = A, 2018 = J (I skipped), 2023 = P (O skipped), 2025 = S.
    assert [model_year_code(y) for y in (2010, 2016, 2018, 2020, 2023, 2025)] == list("AGJLPS")


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_profiles_carry_the_energy_stores_of_their_powertrain(powertrain: Powertrain) -> None:
    fleet = [p for p in build_fleet(400, seed=2) if p.powertrain is powertrain]
    assert fleet
    for p in fleet:
        assert (p.tank_l is not None) == (powertrain is not Powertrain.BEV)
        assert (p.battery_kwh is not None) == (powertrain is not Powertrain.ICE)
        assert p.has_engine == (powertrain is not Powertrain.BEV)
        assert p.is_plug_in == (powertrain in (Powertrain.BEV, Powertrain.PHEV))


def test_profile_without_its_energy_store_is_refused() -> None:
    good = build_fleet(1, seed=1)[0]
    with pytest.raises(ValueError, match="needs"):
        VehicleProfile(
            vin=good.vin,
            brand="X",
            model="Y",
            model_year=2020,
            powertrain=Powertrain.BEV,
            home_lat=MUNICH.center_lat,
            home_lon=MUNICH.center_lon,
            mass_kg=1500,
            drag_area_m2=0.6,
        )


def test_negative_count_is_refused_and_zero_is_empty() -> None:
    assert build_fleet(0, seed=1) == []
    with pytest.raises(ValueError):
        build_fleet(-1, seed=1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=-(2**63), max_value=2**63), count=st.integers(0, 60))
def test_any_fleet_is_valid_and_lives_in_its_city(seed: int, count: int) -> None:
    city = BERLIN if seed % 2 else MUNICH
    fleet = build_fleet(count, seed, city)
    assert len(fleet) == count
    assert len({p.vin for p in fleet}) == count
    for p in fleet:
        assert p.vin.has_valid_check_digit
        assert city.contains(p.home_lat, p.home_lon, margin_km=0.01)


# ---------------------------------------------------------------------------------- city


def test_haversine_known_distance() -> None:
    # Munich Marienplatz -> Berlin Brandenburger Tor is about 504 km great-circle.
    d = haversine_km(MUNICH.center_lat, MUNICH.center_lon, BERLIN.center_lat, BERLIN.center_lon)
    assert 500.0 < d < 508.0
    assert haversine_km(48.0, 11.0, 48.0, 11.0) == 0.0


def test_bearing_cardinal_directions() -> None:
    assert bearing_deg(48.0, 11.0, 49.0, 11.0) == pytest.approx(0.0, abs=1e-9)
    assert bearing_deg(48.0, 11.0, 47.0, 11.0) == pytest.approx(180.0)
    assert bearing_deg(0.0, 11.0, 0.0, 12.0) == pytest.approx(90.0)
    assert bearing_deg(0.0, 11.0, 0.0, 10.0) == pytest.approx(270.0)


@settings(max_examples=200)
@given(
    lat=st.floats(-80, 80),
    lon=st.floats(-180, 180),
    bearing=st.floats(0, 360, exclude_max=True),
    distance=st.floats(0.01, 500),
)
def test_destination_point_inverts_haversine_and_bearing(
    lat: float, lon: float, bearing: float, distance: float
) -> None:
    lat2, lon2 = destination_point(lat, lon, bearing, distance)
    assert -180.0 <= lon2 < 180.0
    assert haversine_km(lat, lon, lat2, lon2) == pytest.approx(distance, rel=1e-6, abs=1e-6)
    back = bearing_deg(lat, lon, lat2, lon2)
    assert min(abs(back - bearing), 360.0 - abs(back - bearing)) < 1e-3


@settings(max_examples=200)
@given(east=st.floats(-30, 30), north=st.floats(-30, 30))
def test_local_plane_round_trips_and_matches_haversine(east: float, north: float) -> None:
    lat, lon = MUNICH.to_geo(east, north)
    back = MUNICH.to_local(lat, lon)
    assert back == pytest.approx((east, north), abs=1e-9)
    # The flat plane is only used at city scale, where it must agree with the sphere.
    flat = math.hypot(east, north)
    sphere = MUNICH.distance_from_center_km(lat, lon)
    assert sphere == pytest.approx(flat, rel=5e-3, abs=1e-9)


def test_random_points_cover_the_disc_uniformly() -> None:
    rng = random.Random(1)
    points = [random_point(MUNICH, rng) for _ in range(4000)]
    radii = [MUNICH.distance_from_center_km(lat, lon) for lat, lon in points]
    assert max(radii) <= MUNICH.radius_km * 1.005
    # Uniform in area: half the points lie within radius / sqrt(2).
    inner = sum(r < MUNICH.radius_km / math.sqrt(2) for r in radii) / len(radii)
    assert 0.46 < inner < 0.54


def test_air_temperature_is_seasonal_and_daily() -> None:
    july_afternoon = 1_752_850_800_000  # 2025-07-18 15:00 UTC
    january_night = 1_736_906_400_000  # 2025-01-15 02:00 UTC
    assert MUNICH.air_temperature_c(july_afternoon) > 20.0
    assert MUNICH.air_temperature_c(january_night) < 0.0


def test_city_validates_itself() -> None:
    with pytest.raises(ValueError):
        City("Nowhere", 95.0, 0.0, 10.0)
    with pytest.raises(ValueError):
        City("Huge", 48.0, 11.0, 500.0)
