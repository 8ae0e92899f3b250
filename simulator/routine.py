"""Owners and their daily routines: where a car goes, and when.

An :class:`Owner` (home, work, lifestyle, habits) is drawn once per car; a day's plan
(:func:`plan_day`) is a pure function of the owner (which carries the car's routine seed) and
the local date, so any day can be computed on its own: no lookahead, no state, and a backfill
of 30 days gives the same trips as 30 days of real time.

Weekdays: commuters leave for work around their habitual time (per-owner habit plus daily
jitter), sometimes run an errand on the way home or in the evening; retired owners and home
workers run one or two errands. Saturdays are for errands, Sundays sometimes for a trip out of
the city. Every day ends with the car parked at home. Refuelling and charging detours are
decided by the vehicle model when a leg starts, from the car's actual energy level.

Local time is Central European (CET/CEST, EU summer time rule), which is right for every city
in :mod:`simulator.city`.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from enum import StrEnum

from protocol.places import Place, PlaceKind
from simulator.city import City

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 24 * MS_PER_HOUR
COMMUTER_SHARE = 0.65
RETIRED_SHARE = 0.2  # the rest works from home
HOME_CHARGER_SHARE = 0.6  # plug-in owners with a wallbox at home


class Lifestyle(StrEnum):
    COMMUTER = "commuter"
    RETIRED = "retired"
    HOME_OFFICE = "home_office"


class Purpose(StrEnum):
    WORK = "work"
    HOME = "home"
    ERRAND = "errand"
    LEISURE = "leisure"  # a trip out of the city


@dataclass(frozen=True, slots=True)
class Owner:
    routine_seed: int
    home: tuple[float, float]  # local (east, north) km
    work: tuple[float, float] | None
    lifestyle: Lifestyle
    leave_home_h: float  # habitual departure for work, local hours
    leave_work_h: float
    home_charger: bool
    errand_share: float  # chance of an extra errand on a given day
    outing_share: float  # chance of a Sunday trip out of the city


@dataclass(frozen=True, slots=True)
class Leg:
    """Drive to ``dest`` leaving at ``depart_ms`` (UTC). ``key`` orders legs across days."""

    depart_ms: int
    dest: tuple[float, float]
    purpose: Purpose
    key: tuple[int, int]  # (proleptic ordinal of the local date, index in the day)


def make_owner(routine_seed: int, home: tuple[float, float], city: City, *, plug_in: bool) -> Owner:
    rng = random.Random(f"owner:{routine_seed}")
    draw = rng.random()
    lifestyle = (
        Lifestyle.COMMUTER
        if draw < COMMUTER_SHARE
        else Lifestyle.RETIRED
        if draw < COMMUTER_SHARE + RETIRED_SHARE
        else Lifestyle.HOME_OFFICE
    )
    work = city.random_local_point(rng) if lifestyle is Lifestyle.COMMUTER else None
    return Owner(
        routine_seed=routine_seed,
        home=home,
        work=work,
        lifestyle=lifestyle,
        leave_home_h=rng.uniform(6.5, 9.0),
        leave_work_h=rng.uniform(16.0, 18.5),
        home_charger=plug_in and rng.random() < HOME_CHARGER_SHARE,
        errand_share=rng.uniform(0.2, 0.6),
        outing_share=rng.uniform(0.1, 0.5),
    )


def _last_sunday_1utc(year: int, month: int) -> int:
    """Epoch ms of 01:00 UTC on the last Sunday of ``month`` (EU summer time switch)."""
    last = dt.date(year, month, 31)
    last -= dt.timedelta(days=(last.weekday() + 1) % 7)
    return int(dt.datetime(last.year, last.month, last.day, 1, tzinfo=dt.UTC).timestamp() * 1000)


def utc_offset_ms(now_ms: int) -> int:
    """CET (UTC+1) or CEST (UTC+2) at UTC epoch ms ``now_ms`` (EU rule, Directive 2000/84/EC)."""
    year = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).year
    summer = _last_sunday_1utc(year, 3) <= now_ms < _last_sunday_1utc(year, 10)
    return 2 * MS_PER_HOUR if summer else MS_PER_HOUR


def local_date(now_ms: int) -> dt.date:
    return dt.datetime.fromtimestamp((now_ms + utc_offset_ms(now_ms)) / 1000, dt.UTC).date()


def _at(day: dt.date, hours: float) -> int:
    """UTC epoch ms of local time ``hours`` on ``day``."""
    midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    local = midnight + round(hours * MS_PER_HOUR)
    return local - utc_offset_ms(local - MS_PER_HOUR)


def _errand_point(rng: random.Random, city: City, places: tuple[Place, ...]) -> tuple[float, float]:
    # Mostly shops and friends anywhere in town; now and then a partner business.
    partners = [p for p in places if p.kind is PlaceKind.PARTNER]
    if partners and rng.random() < 0.15:
        place = rng.choice(partners)
        return city.to_local(place.lat, place.lon)
    return city.random_local_point(rng)


def plan_day(owner: Owner, day: dt.date, city: City, places: tuple[Place, ...]) -> tuple[Leg, ...]:
    """The owner's trips on local date ``day``, in departure order, ending at home."""
    rng = random.Random(f"day:{owner.routine_seed}:{day.isoformat()}")
    weekday = day.isoweekday()
    stops: list[tuple[float, tuple[float, float], Purpose]] = []  # (local hour, dest, purpose)
    home = owner.home

    def errand_then_home(start_h: float) -> None:
        stops.append((start_h, _errand_point(rng, city, places), Purpose.ERRAND))
        stops.append((start_h + rng.uniform(0.4, 1.5), home, Purpose.HOME))

    if weekday <= 5 and owner.work is not None:
        if rng.random() < 0.93:  # holidays, sick days, the odd day at home
            leave = owner.leave_home_h + rng.gauss(0.0, 0.2)
            stops.append((leave, owner.work, Purpose.WORK))
            back = owner.leave_work_h + rng.gauss(0.0, 0.3)
            if rng.random() < owner.errand_share * 0.5:
                stops.append((back, _errand_point(rng, city, places), Purpose.ERRAND))
                stops.append((back + rng.uniform(0.3, 1.0), home, Purpose.HOME))
            else:
                stops.append((back, home, Purpose.HOME))
            if rng.random() < owner.errand_share * 0.4:
                errand_then_home(max(back + 1.5, rng.uniform(19.0, 20.5)))
    elif weekday == 7 and rng.random() < owner.outing_share:
        # A day out: lakes and mountains south of the city, 30-70 km from its centre.
        bearing = math.radians(rng.uniform(120.0, 260.0))
        distance = rng.uniform(30.0, 70.0)
        dest = (distance * math.sin(bearing), distance * math.cos(bearing))
        stops.append((rng.uniform(9.0, 11.5), dest, Purpose.LEISURE))
        stops.append((rng.uniform(15.0, 18.0), home, Purpose.HOME))
    else:
        count = rng.choice((0, 1, 1, 2)) if weekday <= 6 else rng.choice((0, 0, 1))
        if weekday == 6:
            count += 1
        start = rng.uniform(9.0, 11.0)
        for _ in range(count):
            errand_then_home(start)
            start += rng.uniform(2.5, 4.5)
    legs = []
    ordinal = day.toordinal()
    for index, (hour, dest, purpose) in enumerate(stops):
        legs.append(Leg(_at(day, min(hour, 23.5)), dest, purpose, (ordinal, index)))
    return tuple(legs)


class RoutineCursor:
    """A car's position in its owner's routine: which leg comes next. Caches a few days."""

    __slots__ = ("_cache", "_city", "_owner", "_places", "last_key")

    def __init__(self, owner: Owner, city: City, places: tuple[Place, ...]) -> None:
        self._owner, self._city, self._places = owner, city, places
        self._cache: dict[int, tuple[Leg, ...]] = {}
        self.last_key = (0, -1)

    def day(self, day: dt.date) -> tuple[Leg, ...]:
        ordinal = day.toordinal()
        legs = self._cache.get(ordinal)
        if legs is None:
            if len(self._cache) > 8:
                self._cache.clear()
            legs = self._cache[ordinal] = plan_day(self._owner, day, self._city, self._places)
        return legs

    def next_leg(self, not_before_ms: int) -> Leg:
        """The first leg after the last one taken that departs at ``not_before_ms`` or later
        (legs missed by more than that, e.g. while the simulator was paused, are skipped)."""
        day = local_date(not_before_ms) - dt.timedelta(days=1)
        for _ in range(30):
            for leg in self.day(day):
                if leg.key > self.last_key and leg.depart_ms >= not_before_ms:
                    return leg
            day += dt.timedelta(days=1)
        raise AssertionError("no trip in 30 days")  # every week has weekday or Saturday trips

    def last_leg_before(self, now_ms: int) -> tuple[Leg | None, Leg | None]:
        """The last two legs that departed before ``now_ms`` (older first), within two days."""
        today = local_date(now_ms)
        legs = [
            leg
            for day in (today - dt.timedelta(days=2), today - dt.timedelta(days=1), today)
            for leg in self.day(day)
            if leg.depart_ms < now_ms
        ]
        previous = legs[-2] if len(legs) > 1 else None
        return previous, legs[-1] if legs else None
