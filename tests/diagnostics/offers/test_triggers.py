"""The stream side of the offers engine (``TriggerEngine``): low fuel or charge near a partner
station ahead, and a due service while the car stops at a dealer. Pure: samples in, triggers
out, time is the samples' own."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from diagnostics.offers.geo import Circle, Geofence
from diagnostics.offers.geo_index import GeofenceIndex
from diagnostics.offers.geofence_events import GeofenceEventKind
from diagnostics.offers.rules import OfferRule, default_rules
from diagnostics.offers.triggers import (
    DISTANCE_TO_SERVICE,
    FUEL,
    HEADING,
    LAT,
    LON,
    SERVICE_DUE,
    SOC,
    SPEED,
    Trigger,
    TriggerEngine,
)
from diagnostics.stream_input import Sample, SignalValue
from protocol.places import PlaceKind

VIN = "WVWZZZ1JZXW000001"
T0 = int(datetime(2026, 11, 16, 9, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
# One degree of latitude is about 111.2 km on the engine's sphere.
KM_LAT = 1 / 111.195

STAR = Geofence(
    "star-1",
    PlaceKind.FUEL_STATION,
    "Star Schwabing",
    Circle(48.15, 11.56, 150.0),
    brand="Star",
    partner_id="star",
)
# Far from the Star station (about 8 km): a car by it has no partner station in reach.
ESSO = Geofence(
    "esso-1", PlaceKind.FUEL_STATION, "Esso Bogenhausen", Circle(48.20, 11.65, 150.0), "Esso"
)
SWM = Geofence(
    "swm-1",
    PlaceKind.CHARGING_STATION,
    "SWM Sendling",
    Circle(48.10, 11.50, 150.0),
    brand="SWM",
    partner_id="swm",
)
DEALER = Geofence(
    "dealer-1", PlaceKind.DEALER, "Autohaus Berg am Laim", Circle(48.12, 11.62, 1000.0), "BMW"
)
INDEX = GeofenceIndex([STAR, ESSO, SWM, DEALER])

FUEL_RULE = "fuel-discount-partner"
CHARGE_RULE = "charging-discount-partner"
SERVICE_RULE = "service-booking-near-dealer"


def rules(*, disabled: Iterable[str] = ()) -> list[OfferRule]:
    """The default rules as stored at version 1; ``disabled`` switched off."""
    off = set(disabled)
    return [
        OfferRule.model_validate(
            {**spec.model_dump(), "id": rid, "version": 1, "enabled": rid not in off}
        )
        for rid, spec in default_rules()
    ]


def engine(*, disabled: Iterable[str] = ()) -> TriggerEngine:
    return TriggerEngine(rules(disabled=disabled), INDEX)


def sample(ts_ms: int, lat: float, lon: float, **signals: SignalValue) -> Sample:
    names = {
        "heading": HEADING,
        "speed": SPEED,
        "fuel": FUEL,
        "soc": SOC,
        "due": SERVICE_DUE,
        "to_service": DISTANCE_TO_SERVICE,
    }
    values: dict[str, SignalValue] = {LAT: lat, LON: lon}
    values |= {names[k]: v for k, v in signals.items()}
    return Sample(VIN, ts_ms, values)


def south_of(fence: Geofence, km: float) -> tuple[float, float]:
    lat, lon = fence.geometry.anchor
    return lat - km * KM_LAT, lon


def run(eng: TriggerEngine, *samples: Sample) -> list[Trigger]:
    return eng.evaluate(samples).triggers


# -- low fuel or charge near a partner station ------------------------------------------------


def test_low_fuel_heading_for_a_partner_station_triggers_once_for_that_place() -> None:
    lat, lon = south_of(STAR, 2.0)
    found = run(engine(), sample(T0, lat, lon, heading=0.0, speed=50.0, fuel=15.0))
    assert len(found) == 1
    (trigger,) = found
    assert trigger.rule_id == FUEL_RULE
    assert trigger.rule_version == 1
    assert trigger.vin == VIN
    assert trigger.ts_ms == T0
    assert trigger.subject_key == "place:star-1"
    assert trigger.place_id == "star-1"
    assert trigger.speed_kmh == 50.0
    assert trigger.details["energy"] == "fuel"
    assert trigger.details["partner_id"] == "star"
    assert trigger.details["place_name"] == "Star Schwabing"
    assert trigger.details["level_pct"] == 15.0
    assert trigger.details["distance_m"] == pytest.approx(2000, abs=5)


def test_a_partner_station_slightly_off_the_heading_is_still_ahead() -> None:
    lat, lon = south_of(STAR, 2.0)
    # The station is due north; 45 degrees off is within the default 60.
    found = run(engine(), sample(T0, lat, lon, heading=45.0, speed=50.0, fuel=15.0))
    assert [t.place_id for t in found] == ["star-1"]


def test_a_station_behind_a_moving_car_is_not_on_the_way() -> None:
    lat, lon = south_of(STAR, 2.0)
    assert run(engine(), sample(T0, lat, lon, heading=180.0, speed=50.0, fuel=15.0)) == []
    # Nor one off to the side.
    assert run(engine(), sample(T0, lat, lon, heading=90.0, speed=50.0, fuel=15.0)) == []


def test_a_standing_car_takes_any_station_in_reach() -> None:
    lat, lon = south_of(STAR, 2.0)
    found = run(engine(), sample(T0, lat, lon, heading=180.0, speed=0.0, fuel=15.0))
    assert [(t.rule_id, t.subject_key) for t in found] == [(FUEL_RULE, "place:star-1")]


def test_a_partner_station_beyond_the_rule_s_distance_is_not_in_reach() -> None:
    lat, lon = south_of(STAR, 3.2)  # default max_distance_km: 3
    assert run(engine(), sample(T0, lat, lon, heading=0.0, speed=50.0, fuel=15.0)) == []


@pytest.mark.parametrize("level", [20.0, 30.0, 80.0])
def test_enough_fuel_triggers_nothing(level: float) -> None:
    lat, lon = south_of(STAR, 2.0)
    assert run(engine(), sample(T0, lat, lon, heading=0.0, speed=50.0, fuel=level)) == []


def test_a_station_of_no_partner_triggers_nothing() -> None:
    lat, lon = south_of(ESSO, 1.0)
    result = engine().evaluate([sample(T0, lat, lon, heading=0.0, speed=0.0, fuel=5.0)])
    assert result.triggers == []
    in_reach = INDEX.near(lat, lon, 3000.0, kinds=(PlaceKind.FUEL_STATION,))
    assert [fence.id for fence, _ in in_reach] == ["esso-1"]


def test_a_condition_that_holds_triggers_once_per_half_hour() -> None:
    eng = engine()
    lat, lon = south_of(STAR, 1.0)
    at = [0, 1, 10, 29, 30, 31, 59, 60]
    fired = [
        ts
        for minute in at
        for ts in [T0 + minute * MINUTE]
        if run(eng, sample(ts, lat, lon, speed=0.0, fuel=15.0))
    ]
    assert fired == [T0, T0 + 30 * MINUTE, T0 + 60 * MINUTE]


def test_resent_or_older_samples_change_nothing() -> None:
    eng = engine()
    lat, lon = south_of(STAR, 1.0)
    # Enough fuel at T0; then a sample older than that, and T0 resent, both saying 15 %.
    assert run(eng, sample(T0, lat, lon, speed=0.0, fuel=50.0)) == []
    assert run(eng, sample(T0 - MINUTE, lat, lon, speed=0.0, fuel=15.0)) == []
    assert run(eng, sample(T0, lat, lon, speed=0.0, fuel=15.0)) == []
    # The next new sample says the same: now it counts.
    found = run(eng, sample(T0 + 1, lat, lon, speed=0.0, fuel=15.0))
    assert [t.ts_ms for t in found] == [T0 + 1]
    # And the trigger just made is not made again by resending its sample.
    assert run(eng, sample(T0 + 1, lat, lon, speed=0.0, fuel=15.0)) == []


def test_signals_carry_forward_from_earlier_samples() -> None:
    eng = engine()
    lat, lon = south_of(STAR, 1.0)
    assert run(eng, Sample(VIN, T0, {FUEL: 15.0, SPEED: 0.0})) == []  # no position yet
    found = run(eng, Sample(VIN, T0 + 1000, {LAT: lat, LON: lon}))
    assert [(t.rule_id, t.place_id) for t in found] == [(FUEL_RULE, "star-1")]


def test_low_charge_near_a_partner_charger_offers_a_charge() -> None:
    lat, lon = south_of(SWM, 1.5)
    found = run(engine(), sample(T0, lat, lon, heading=0.0, speed=40.0, soc=15.0))
    assert len(found) == 1
    (trigger,) = found
    assert trigger.rule_id == CHARGE_RULE
    assert trigger.subject_key == "place:swm-1"
    assert trigger.details["energy"] == "charge"
    assert trigger.details["partner_id"] == "swm"


def test_low_charge_near_a_fuel_station_only_triggers_nothing() -> None:
    lat, lon = south_of(STAR, 1.0)
    assert run(engine(), sample(T0, lat, lon, speed=0.0, soc=10.0)) == []


# -- service due near a dealer ----------------------------------------------------------------


def dealer_visit(eng: TriggerEngine, minutes: int, **signals: SignalValue) -> list[Trigger]:
    """The car stands in the dealer's area, one sample a minute from T0 on."""
    lat, lon = DEALER.geometry.anchor
    found = []
    for minute in range(minutes + 1):
        found += run(eng, sample(T0 + minute * MINUTE, lat + 0.001, lon, speed=0.0, **signals))
    return found


def test_a_due_service_triggers_once_when_the_car_dwells_at_the_dealer() -> None:
    eng = engine()
    lat, lon = DEALER.geometry.anchor
    # Entering is not stopping by.
    outcome = eng.evaluate([sample(T0, lat, lon, speed=20.0, due=True)])
    assert outcome.triggers == []
    assert [e.kind for e in outcome.events] == [GeofenceEventKind.ENTER]
    found = []
    for minute in range(1, 11):
        outcome = eng.evaluate([sample(T0 + minute * MINUTE, lat, lon, speed=0.0)])
        found += [(minute, t) for t in outcome.triggers]
        if minute == 5:
            assert [e.kind for e in outcome.events] == [GeofenceEventKind.DWELL]
    assert len(found) == 1
    minute, trigger = found[0]
    assert minute == 5
    assert trigger.rule_id == SERVICE_RULE
    assert trigger.subject_key == "place:dealer-1"
    assert trigger.place_id == "dealer-1"
    assert trigger.details == {
        "place_name": "Autohaus Berg am Laim",
        "reason": "service_due",
        # Where to look for a workshop: the dealer area's anchor (a polygon's centroid).
        "place_lat": pytest.approx(DEALER.geometry.anchor[0], abs=1e-6),
        "place_lon": pytest.approx(DEALER.geometry.anchor[1], abs=1e-6),
    }


def test_a_short_distance_to_service_counts_as_due() -> None:
    found = dealer_visit(engine(), 6, to_service=800.0)
    assert [(t.rule_id, t.ts_ms) for t in found] == [(SERVICE_RULE, T0 + 5 * MINUTE)]


def test_no_service_due_and_no_alert_triggers_nothing() -> None:
    assert dealer_visit(engine(), 10, due=False, to_service=15_000.0) == []


def test_an_open_maintenance_alert_triggers_even_when_not_due() -> None:
    eng = engine()
    eng.set_alerting({VIN})
    found = dealer_visit(eng, 6, due=False)
    assert [(t.rule_id, t.ts_ms) for t in found] == [(SERVICE_RULE, T0 + 5 * MINUTE)]
    assert found[0].details["reason"] == "maintenance_alert"
    # Another car's alert does not count for this one.
    other = engine()
    other.set_alerting({"WVWZZZ1JZXW000002"})
    assert dealer_visit(other, 6, due=False) == []


def test_driving_past_the_dealer_triggers_nothing() -> None:
    eng = engine()
    lat, lon = DEALER.geometry.anchor
    found = []
    for minute in range(4):  # 4 minutes inside, then out
        found += run(eng, sample(T0 + minute * MINUTE, lat, lon, speed=20.0, due=True))
    found += run(eng, sample(T0 + 6 * MINUTE, lat + 0.05, lon, speed=50.0))
    assert found == []


# -- rules switched off -------------------------------------------------------------------------


def test_disabled_rules_are_ignored() -> None:
    lat, lon = south_of(STAR, 1.0)
    fuel_off = engine(disabled=[FUEL_RULE])
    assert run(fuel_off, sample(T0, lat, lon, speed=0.0, fuel=5.0)) == []
    service_off = engine(disabled=[SERVICE_RULE])
    assert dealer_visit(service_off, 6, due=True) == []
    # The other rules still work.
    assert [t.rule_id for t in dealer_visit(fuel_off, 6, due=True)] == [SERVICE_RULE]


def test_reconfiguring_switches_rules_off_and_on() -> None:
    eng = engine()
    lat, lon = south_of(STAR, 1.0)
    eng.configure(rules(disabled=[FUEL_RULE]), INDEX)
    assert run(eng, sample(T0, lat, lon, speed=0.0, fuel=5.0)) == []
    eng.configure(rules(), INDEX)
    found = run(eng, sample(T0 + 1000, lat, lon, speed=0.0, fuel=5.0))
    assert [t.rule_id for t in found] == [FUEL_RULE]


def test_rules_the_stream_does_not_evaluate_never_trigger() -> None:
    """Renewals, test drives and trials are sweeps; only their rules are left here."""
    sweeps_only = [r for r in rules() if r.id not in (FUEL_RULE, CHARGE_RULE, SERVICE_RULE)]
    eng = TriggerEngine(sweeps_only, INDEX)
    lat, lon = south_of(STAR, 1.0)
    assert run(eng, sample(T0, lat, lon, speed=0.0, fuel=5.0, due=True)) == []
    assert dealer_visit(eng, 6, due=True) == []
