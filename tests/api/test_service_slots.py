"""Slot search: the grid cut from opening hours in each centre's time zone (DST included),
distances, and through the API nearest first, skills, capacity and the vehicle's position."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from api.service.geo import haversine_km
from api.service.slots import (
    OpeningInterval,
    Slot,
    check_opening_hours,
    free_slots,
    is_slot,
    slots_between,
)
from tests.api.customer_platform import ADMIN, Platform, running_platform
from tests.api.test_service_support import (
    MARIENPLATZ,
    book,
    centre,
    local,
    owner_of,
    pin_clock,
    place,
    van,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_8_TO_12 = [OpeningInterval(d, time(8), time(12)) for d in range(1, 6)]
VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"

# -- pure: the grid -------------------------------------------------------------------------------


def test_slots_are_cut_from_local_opening_hours() -> None:
    # Monday 2030-01-07 in Berlin is UTC+1: 08:00 local is 07:00 UTC.
    day = datetime(2030, 1, 7, tzinfo=UTC)
    slots = slots_between(WEEKDAYS_8_TO_12, BERLIN, 60, day, day + timedelta(days=1))
    assert [s.start.hour for s in slots] == [7, 8, 9, 10]
    assert all(s.end - s.start == timedelta(hours=1) for s in slots)


def test_a_slot_must_end_by_closing_time() -> None:
    day = datetime(2030, 1, 7, tzinfo=UTC)
    slots = slots_between(WEEKDAYS_8_TO_12, BERLIN, 90, day, day + timedelta(days=1))
    # 08:00-09:30 and 09:30-11:00 fit; 11:00-12:30 does not.
    assert [s.start.astimezone(BERLIN).strftime("%H:%M") for s in slots] == ["08:00", "09:30"]


def test_weekends_closed_and_the_range_is_respected() -> None:
    saturday = datetime(2030, 1, 12, tzinfo=UTC)
    assert slots_between(WEEKDAYS_8_TO_12, BERLIN, 60, saturday, saturday + timedelta(days=2)) == []
    monday_9 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)  # 09:00 Berlin
    slots = slots_between(WEEKDAYS_8_TO_12, BERLIN, 60, monday_9, monday_9 + timedelta(hours=2))
    assert [s.start for s in slots] == [monday_9, monday_9 + timedelta(hours=1)]


def test_the_same_opening_hours_in_new_york_are_later_in_utc() -> None:
    day = datetime(2030, 1, 7, tzinfo=UTC)
    slots = slots_between(WEEKDAYS_8_TO_12, NEW_YORK, 60, day, day + timedelta(days=1))
    assert [s.start.hour for s in slots] == [13, 14, 15, 16]  # UTC-5


def test_summer_time_moves_the_utc_slots_but_not_the_local_ones() -> None:
    winter = datetime(2030, 3, 29, tzinfo=UTC)  # Friday before the change (last Sunday of March)
    summer = datetime(2030, 4, 1, tzinfo=UTC)  # Monday after
    before = slots_between(WEEKDAYS_8_TO_12, BERLIN, 60, winter, winter + timedelta(days=1))
    after = slots_between(WEEKDAYS_8_TO_12, BERLIN, 60, summer, summer + timedelta(days=1))
    assert before[0].start.hour == 7 and after[0].start.hour == 6
    assert before[0].start.astimezone(BERLIN).hour == after[0].start.astimezone(BERLIN).hour == 8


def test_a_local_time_skipped_by_the_clock_change_is_no_slot() -> None:
    night = [OpeningInterval(7, time(1), time(5))]  # Sunday 01:00-05:00
    change = datetime(2030, 3, 31, tzinfo=UTC)  # Sunday: 02:00 jumps to 03:00 in Berlin
    slots = slots_between(
        night, BERLIN, 60, change - timedelta(hours=2), change + timedelta(days=1)
    )
    local_hours = [s.start.astimezone(BERLIN).hour for s in slots]
    assert local_hours == [1, 3, 4]
    assert len({s.start for s in slots}) == len(slots)


def test_is_slot_agrees_with_the_grid() -> None:
    day = datetime(2030, 1, 7, tzinfo=UTC)
    for slot in slots_between(WEEKDAYS_8_TO_12, NEW_YORK, 30, day, day + timedelta(days=7)):
        assert is_slot(WEEKDAYS_8_TO_12, NEW_YORK, 30, slot.start)
    monday_8_local = datetime(2030, 1, 7, 13, 0, tzinfo=UTC)
    assert is_slot(WEEKDAYS_8_TO_12, NEW_YORK, 60, monday_8_local)
    assert not is_slot(WEEKDAYS_8_TO_12, NEW_YORK, 60, monday_8_local + timedelta(minutes=30))
    assert not is_slot(WEEKDAYS_8_TO_12, NEW_YORK, 60, monday_8_local + timedelta(hours=4))
    assert not is_slot(WEEKDAYS_8_TO_12, BERLIN, 60, monday_8_local)  # 14:00 in Berlin


def test_free_capacity_counts_overlapping_open_bookings() -> None:
    start = datetime(2030, 1, 7, 7, tzinfo=UTC)
    slots = [Slot(start + timedelta(hours=h), start + timedelta(hours=h + 1)) for h in range(3)]
    # Two one-hour bookings in the first slot, one two-hour booking across the second and third.
    busy = [
        (start, start + timedelta(hours=1)),
        (start, start + timedelta(hours=1)),
        (start + timedelta(hours=1), start + timedelta(hours=3)),
    ]
    free = free_slots(slots, busy, capacity=2)
    assert [(f.start.hour, f.free, f.capacity) for f in free] == [(8, 1, 2), (9, 1, 2)]


def test_opening_hours_must_not_overlap_or_invert() -> None:
    check_opening_hours(
        [OpeningInterval(1, time(8), time(12)), OpeningInterval(1, time(13), time(17))]
    )
    with pytest.raises(ValueError, match="overlap"):
        check_opening_hours(
            [OpeningInterval(1, time(8), time(12)), OpeningInterval(1, time(11), time(17))]
        )
    with pytest.raises(ValueError, match="before"):
        check_opening_hours([OpeningInterval(2, time(12), time(8))])


def test_haversine_distances() -> None:
    assert haversine_km(*MARIENPLATZ, *MARIENPLATZ) == 0
    # Munich Marienplatz to Berlin Alexanderplatz: 504 km as the crow flies.
    assert haversine_km(*MARIENPLATZ, 52.521918, 13.413215) == pytest.approx(504.5, abs=1.0)
    # A degree of latitude is 111.2 km everywhere.
    assert haversine_km(10, 20, 11, 20) == pytest.approx(111.19, abs=0.01)
    assert haversine_km(0, 0, 0, 180) == pytest.approx(20015.1, abs=0.5)


# -- through the API ------------------------------------------------------------------------------


@dataclass
class Network:
    platform: Platform
    now: datetime
    a: dict[str, str]
    b: dict[str, str]


# North of Marienplatz by about 1, 3 and 6 km.
NEAR, MIDDLE, FAR = (48.146, 11.576), (48.164, 11.576), (48.191, 11.576)


@pytest.fixture
async def network(pool: asyncpg.Pool) -> AsyncIterator[Network]:
    async with running_platform(pool) as platform:
        now = pin_clock(platform)
        await centre(platform, "far", at=FAR, skills=("tyres", "brakes"))
        await centre(platform, "near", at=NEAR, bays=1, skills=("tyres",))
        await centre(platform, "middle", at=MIDDLE, skills=("tyres", "brakes"))
        _, a = await owner_of(platform, "a@example.com", VIN_A)
        _, b = await owner_of(platform, "b@example.com", VIN_B)
        yield Network(platform, now, a, b)


async def _search(net: Network, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await net.platform.http.get("/v1/service/slots", params=params, headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.integration
async def test_nearest_first_with_distances(network: Network) -> None:
    found = await _search(network, network.a, lat=MARIENPLATZ[0], lon=MARIENPLATZ[1])
    assert [o["centre_id"] for o in found["data"]] == ["near", "middle", "far"]
    assert found["count"] == 3
    assert found["origin"] == {
        "lat": MARIENPLATZ[0],
        "lon": MARIENPLATZ[1],
        "source": "query",
        "ts": None,
    }
    distances = [o["distance_km"] for o in found["data"]]
    assert distances == pytest.approx([0.99, 2.99, 5.99], abs=0.05)
    narrow = await _search(network, network.a, lat=MARIENPLATZ[0], lon=MARIENPLATZ[1], radius_km=4)
    assert [o["centre_id"] for o in narrow["data"]] == ["near", "middle"]
    paged = await _search(
        network, network.a, lat=MARIENPLATZ[0], lon=MARIENPLATZ[1], limit=1, offset=1
    )
    assert ([o["centre_id"] for o in paged["data"]], paged["count"]) == (["middle"], 3)


@pytest.mark.integration
async def test_only_centres_with_every_skill(network: Network) -> None:
    found = await _search(
        network, network.a, lat=MARIENPLATZ[0], lon=MARIENPLATZ[1], skill=["brakes", "tyres"]
    )
    assert [o["centre_id"] for o in found["data"]] == ["middle", "far"]
    none = await _search(network, network.a, lat=MARIENPLATZ[0], lon=MARIENPLATZ[1], skill="paint")
    assert none == {**none, "data": [], "count": 0}


@pytest.mark.integration
async def test_a_full_slot_is_not_offered_and_free_places_are_counted(network: Network) -> None:
    slot = local(network.now + timedelta(days=1), 10)
    window = {"from": slot.isoformat(), "to": (slot + timedelta(hours=2)).isoformat()}
    search = {"lat": MARIENPLATZ[0], "lon": MARIENPLATZ[1], **window}
    before = {
        o["centre_id"]: o["slots"] for o in (await _search(network, network.a, **search))["data"]
    }
    assert [(s["free"], s["capacity"]) for s in before["near"]] == [(1, 1), (1, 1)]
    assert [(s["free"], s["capacity"]) for s in before["middle"]] == [(2, 2), (2, 2)]
    await book(network.platform, network.a, VIN_A, slot, centre_id="near")
    await book(network.platform, network.b, VIN_B, slot, centre_id="middle")
    after = {
        o["centre_id"]: o["slots"] for o in (await _search(network, network.a, **search))["data"]
    }
    assert [s["start"] for s in after["near"]] == [
        (slot + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    ]
    assert [s["free"] for s in after["middle"]] == [1, 2]


@pytest.mark.integration
async def test_opening_hours_in_the_centres_own_time_zone(pool: asyncpg.Pool) -> None:
    async with running_platform(pool) as platform:
        now = pin_clock(platform)
        hours = [{"weekday": d, "opens": "09:00", "closes": "12:00"} for d in range(1, 8)]
        await centre(platform, "munich", hours=hours)
        await centre(
            platform, "new-york", at=(40.7128, -74.006), timezone="America/New_York", hours=hours
        )
        _, a = await owner_of(platform, "a@example.com", VIN_A)
        tomorrow = now + timedelta(days=1)
        window = {"from": tomorrow.isoformat(), "to": (tomorrow + timedelta(days=1)).isoformat()}
        for centre_id, (lat, lon), zone in (
            ("munich", MARIENPLATZ, "Europe/Berlin"),
            ("new-york", (40.7128, -74.006), "America/New_York"),
        ):
            response = await platform.http.get(
                "/v1/service/slots", params={"lat": lat, "lon": lon, **window}, headers=a
            )
            (option,) = response.json()["data"]
            assert option["centre_id"] == centre_id and option["timezone"] == zone
            starts = [datetime.fromisoformat(s["start"]) for s in option["slots"]]
            assert [s.astimezone(ZoneInfo(zone)).hour for s in starts] == [9, 10, 11]
            assert [s["local_start"][11:16] for s in option["slots"]] == ["09:00", "10:00", "11:00"]
            assert option["opening_hours"][0] == {
                "weekday": 1,
                "opens": "09:00:00",
                "closes": "12:00:00",
            }


@pytest.mark.integration
async def test_search_from_the_cars_last_known_position(network: Network) -> None:
    platform = network.platform
    await van(platform, "van-1", "middle", range_km=5, skills=("tyres",))
    # The car is parked just north of the far centre.
    await place(platform, VIN_A, FAR[0] + 0.005, FAR[1], network.now)
    found = await _search(network, network.a, vin=VIN_A, skill="tyres")
    assert found["origin"]["source"] == "vehicle"
    assert found["origin"]["lat"] == pytest.approx(FAR[0] + 0.005)
    kinds = [(o["kind"], o["van_id"] or o["centre_id"]) for o in found["data"]]
    # The far centre is nearest; the van (home: middle, 3 km away) comes to the car.
    assert kinds[0] == ("workshop", "far")
    assert ("mobile", "van-1") in kinds
    mobile = next(o for o in found["data"] if o["kind"] == "mobile")
    assert mobile["distance_km"] == pytest.approx(3.55, abs=0.1)
    assert all(s["end"] > s["start"] and s["capacity"] == 1 for s in mobile["slots"])


@pytest.mark.integration
async def test_someone_elses_car_and_an_unknown_position(network: Network) -> None:
    http = network.platform.http
    response = await http.get("/v1/service/slots", params={"vin": VIN_A}, headers=network.b)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    response = await http.get("/v1/service/slots", params={"vin": VIN_A}, headers=network.a)
    assert (response.status_code, response.json()["code"]) == (409, "position_unknown")
    response = await http.get("/v1/service/slots", headers=network.a)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_range")
    response = await http.get(
        "/v1/service/slots",
        params={"lat": 48.1, "lon": 11.5, "from": "2030-01-01T00:00:00"},
        headers=ADMIN,
    )
    assert response.status_code == 422  # no UTC offset
    response = await http.get(
        "/v1/service/slots",
        params={"lat": 48.1, "lon": 11.5, "from": "9999-12-31T23:00:00-05:00"},
        headers=ADMIN,
    )
    assert response.status_code == 422  # not this century
