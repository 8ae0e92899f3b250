"""Enter / dwell / exit events from position streams (diagnostics.offers.geofence_events)."""

from __future__ import annotations

import math

import pytest

from diagnostics.offers.geo import Circle, GeoError, Geofence, Polygon
from diagnostics.offers.geo_index import GeofenceIndex
from diagnostics.offers.geofence_events import (
    GeofenceEvent,
    GeofenceEventKind,
    GeofenceTracker,
)
from protocol.places import PlaceKind

ENTER, EXIT, DWELL = GeofenceEventKind.ENTER, GeofenceEventKind.EXIT, GeofenceEventKind.DWELL
VIN = "WBA00000000000001"
T0 = 1_700_000_000_000
MIN = 60_000

# A station (circle) and an overlapping dealer's yard (square) in Munich.
STATION = Geofence("station", PlaceKind.FUEL_STATION, "Aral", Circle(48.1400, 11.5800, 150.0))
YARD = Geofence(
    "yard",
    PlaceKind.DEALER,
    "BMW",
    Polygon(((48.1400, 11.5800), (48.1400, 11.5900), (48.1450, 11.5900), (48.1450, 11.5800))),
)
AT_STATION = (48.1400, 11.5790)  # station only
IN_BOTH = (48.1405, 11.5805)
IN_YARD = (48.1430, 11.5850)  # yard only
AWAY = (48.1300, 11.5600)


def _tracker(**options: int) -> GeofenceTracker:
    return GeofenceTracker(GeofenceIndex([STATION, YARD]), **options)


def _ev(fence_id: str, kind: GeofenceEventKind, ts: int, vin: str = VIN) -> GeofenceEvent:
    return GeofenceEvent(vin, fence_id, kind, ts)


def test_enter_dwell_exit_with_exact_timestamps() -> None:
    tracker = _tracker(dwell_ms=5 * MIN)
    assert tracker.update(VIN, T0, *AWAY) == []
    assert tracker.update(VIN, T0 + 1 * MIN, *AT_STATION) == [_ev("station", ENTER, T0 + MIN)]
    assert tracker.inside(VIN) == frozenset({"station"})
    assert tracker.update(VIN, T0 + 3 * MIN, *AT_STATION) == []
    assert tracker.update(VIN, T0 + 7 * MIN, *AT_STATION) == [_ev("station", DWELL, T0 + 7 * MIN)]
    assert tracker.update(VIN, T0 + 9 * MIN, *AT_STATION) == []  # once per visit
    assert tracker.update(VIN, T0 + 30 * MIN, *AT_STATION) == []
    assert tracker.update(VIN, T0 + 31 * MIN, *AWAY) == [_ev("station", EXIT, T0 + 31 * MIN)]
    assert tracker.inside(VIN) == frozenset()
    # A new visit gets a new ENTER and, after long enough, a new DWELL.
    assert tracker.update(VIN, T0 + 32 * MIN, *AT_STATION) == [_ev("station", ENTER, T0 + 32 * MIN)]
    assert tracker.update(VIN, T0 + 37 * MIN, *AT_STATION) == [_ev("station", DWELL, T0 + 37 * MIN)]


def test_dwell_exactly_at_the_threshold_and_just_below() -> None:
    tracker = _tracker(dwell_ms=300_000)
    tracker.update(VIN, T0, *AT_STATION)
    assert tracker.update(VIN, T0 + 299_999, *AT_STATION) == []
    assert tracker.update(VIN, T0 + 300_000, *AT_STATION) == [_ev("station", DWELL, T0 + 300_000)]


def test_leaving_just_before_the_threshold_gives_no_dwell() -> None:
    tracker = _tracker(dwell_ms=300_000)
    tracker.update(VIN, T0, *AT_STATION)
    tracker.update(VIN, T0 + 299_999, *AT_STATION)
    assert tracker.update(VIN, T0 + 300_000, *AWAY) == [_ev("station", EXIT, T0 + 300_000)]
    # The dwell clock restarts with the next visit.
    tracker.update(VIN, T0 + 300_001, *AT_STATION)
    assert tracker.update(VIN, T0 + 500_000, *AT_STATION) == []
    assert tracker.update(VIN, T0 + 600_001, *AT_STATION) == [_ev("station", DWELL, T0 + 600_001)]


def test_first_position_inside_gives_enter() -> None:
    tracker = _tracker()
    assert tracker.update(VIN, T0, *IN_BOTH) == [
        _ev("station", ENTER, T0),
        _ev("yard", ENTER, T0),
    ]
    assert tracker.inside(VIN) == frozenset({"station", "yard"})


def test_resent_and_out_of_order_positions_produce_nothing() -> None:
    tracker = _tracker(dwell_ms=5 * MIN)
    assert tracker.update(VIN, T0, *AT_STATION) == [_ev("station", ENTER, T0)]
    assert tracker.update(VIN, T0, *AT_STATION) == []  # resent
    assert tracker.update(VIN, T0, *AWAY) == []  # same timestamp, different position: ignored
    assert tracker.inside(VIN) == frozenset({"station"})
    assert tracker.update(VIN, T0 + 2 * MIN, *AWAY) == [_ev("station", EXIT, T0 + 2 * MIN)]
    # A late position from inside, older than the last one: no second ENTER, no EXIT later.
    assert tracker.update(VIN, T0 + 1 * MIN, *AT_STATION) == []
    assert tracker.inside(VIN) == frozenset()
    assert tracker.update(VIN, T0 + 3 * MIN, *AWAY) == []
    # The resent ENTER position after a real re-entry does not count twice either.
    assert tracker.update(VIN, T0 + 4 * MIN, *AT_STATION) == [_ev("station", ENTER, T0 + 4 * MIN)]
    assert tracker.update(VIN, T0 + 4 * MIN, *AT_STATION) == []
    assert tracker.update(VIN, T0 + 9 * MIN, *AT_STATION) == [_ev("station", DWELL, T0 + 9 * MIN)]
    assert tracker.update(VIN, T0 + 9 * MIN, *AT_STATION) == []


def test_a_gap_longer_than_max_gap_ends_the_visits() -> None:
    tracker = _tracker(dwell_ms=5 * MIN, max_gap_ms=30 * MIN)
    tracker.update(VIN, T0, *AT_STATION)
    tracker.update(VIN, T0 + 1 * MIN, *AT_STATION)
    # Parked overnight with no data: the next position is still at the station, but nothing
    # proves it stayed. The old visit ends where it was last seen and a fresh one starts.
    morning = T0 + 10 * 60 * MIN
    assert tracker.update(VIN, morning, *AT_STATION) == [
        _ev("station", EXIT, T0 + 1 * MIN),
        _ev("station", ENTER, morning),
    ]
    assert tracker.update(VIN, morning + 4 * MIN, *AT_STATION) == []
    assert tracker.update(VIN, morning + 5 * MIN, *AT_STATION) == [
        _ev("station", DWELL, morning + 5 * MIN)
    ]


def test_a_gap_of_exactly_max_gap_is_no_gap() -> None:
    tracker = _tracker(dwell_ms=5 * MIN, max_gap_ms=30 * MIN)
    tracker.update(VIN, T0, *AT_STATION)
    assert tracker.update(VIN, T0 + 30 * MIN, *AT_STATION) == [_ev("station", DWELL, T0 + 30 * MIN)]
    # One millisecond more would have been a gap.
    assert tracker.update(VIN, T0 + 60 * MIN + 1, *AWAY) == [_ev("station", EXIT, T0 + 30 * MIN)]


def test_a_gap_after_which_the_car_is_elsewhere() -> None:
    tracker = _tracker(max_gap_ms=30 * MIN)
    tracker.update(VIN, T0, *IN_BOTH)
    later = T0 + 31 * MIN
    assert tracker.update(VIN, later, *IN_YARD) == [
        _ev("station", EXIT, T0),
        _ev("yard", EXIT, T0),
        _ev("yard", ENTER, later),  # a fresh visit, even though it is the same yard
    ]


def test_two_overlapping_fences_order_exit_enter_dwell_by_id() -> None:
    tracker = _tracker(dwell_ms=5 * MIN)
    assert tracker.update(VIN, T0, *AT_STATION) == [_ev("station", ENTER, T0)]
    assert tracker.update(VIN, T0 + 1 * MIN, *IN_BOTH) == [_ev("yard", ENTER, T0 + MIN)]
    # Station reached its dwell; yard not yet.
    assert tracker.update(VIN, T0 + 5 * MIN, *IN_BOTH) == [_ev("station", DWELL, T0 + 5 * MIN)]
    # Leaving the station for the yard only, as the yard's dwell falls due: EXIT first.
    assert tracker.update(VIN, T0 + 6 * MIN, *IN_YARD) == [
        _ev("station", EXIT, T0 + 6 * MIN),
        _ev("yard", DWELL, T0 + 6 * MIN),
    ]
    assert tracker.inside(VIN) == frozenset({"yard"})
    assert tracker.update(VIN, T0 + 7 * MIN, *AT_STATION) == [
        _ev("yard", EXIT, T0 + 7 * MIN),
        _ev("station", ENTER, T0 + 7 * MIN),
    ]


def test_events_within_one_call_are_ordered_by_kind_then_id() -> None:
    fences = [
        Geofence(fid, PlaceKind.PARTNER, fid, Circle(48.14, 11.58 + offset, 200.0))
        for fid, offset in (("b", 0.0), ("a", 0.0), ("d", 0.008), ("c", 0.008))
    ]
    tracker = GeofenceTracker(GeofenceIndex(fences), dwell_ms=0)
    # dwell_ms=0: a DWELL with every ENTER, after all ENTERs.
    assert [(e.kind, e.fence_id) for e in tracker.update(VIN, T0, 48.14, 11.58)] == [
        (ENTER, "a"),
        (ENTER, "b"),
        (DWELL, "a"),
        (DWELL, "b"),
    ]
    assert [(e.kind, e.fence_id) for e in tracker.update(VIN, T0 + 1, 48.14, 11.588)] == [
        (EXIT, "a"),
        (EXIT, "b"),
        (ENTER, "c"),
        (ENTER, "d"),
        (DWELL, "c"),
        (DWELL, "d"),
    ]


def test_vehicles_are_independent() -> None:
    tracker = _tracker(dwell_ms=5 * MIN)
    other = "WBA00000000000002"
    assert tracker.update(VIN, T0, *AT_STATION) == [_ev("station", ENTER, T0)]
    assert tracker.update(other, T0 + 4 * MIN, *AT_STATION) == [
        _ev("station", ENTER, T0 + 4 * MIN, other)
    ]
    # The other car's later clock does not make the first car's positions stale.
    assert tracker.update(VIN, T0 + 5 * MIN, *AT_STATION) == [_ev("station", DWELL, T0 + 5 * MIN)]
    assert tracker.update(other, T0 + 5 * MIN, *AT_STATION) == []
    assert len(tracker) == 2


def test_max_vehicles_evicts_the_least_recently_updated() -> None:
    tracker = _tracker(max_vehicles=3)
    for n in range(3):
        tracker.update(f"V{n}", T0, *AT_STATION)
    tracker.update("V0", T0 + 1, *AT_STATION)  # V0 is fresh again; V1 is now the oldest
    tracker.update("V1", T0, *AT_STATION)  # a resend: ignored, so it does not count as use
    tracker.update("V3", T0, *AWAY)
    assert len(tracker) == 3
    assert tracker.inside("V1") == frozenset()  # forgotten, silently
    assert tracker.inside("V0") == tracker.inside("V2") == frozenset({"station"})
    # A forgotten vehicle starts afresh: an ENTER again, and its old timestamps are not known.
    assert tracker.update("V1", T0, *AT_STATION) == [_ev("station", ENTER, T0, "V1")]
    assert tracker.inside("V2") == frozenset()  # V2 was the oldest now


def test_forget_and_unknown_vehicles() -> None:
    tracker = _tracker()
    assert tracker.inside("nobody") == frozenset()
    tracker.forget("nobody")
    tracker.update(VIN, T0, *AT_STATION)
    tracker.forget(VIN)
    assert tracker.inside(VIN) == frozenset()
    assert len(tracker) == 0
    # Forgotten: the next position, even an older one, is a first position.
    assert tracker.update(VIN, T0 - 1, *AT_STATION) == [_ev("station", ENTER, T0 - 1)]


def test_bad_positions_are_refused_without_changing_state() -> None:
    tracker = _tracker()
    tracker.update(VIN, T0, *AT_STATION)
    for lat, lon in [(91.0, 11.58), (48.14, 200.0), (math.nan, 11.58), (48.14, math.inf)]:
        with pytest.raises(GeoError, match="out of range"):
            tracker.update(VIN, T0 + 1, lat, lon)
    with pytest.raises(GeoError, match="ts_ms"):
        tracker.update(VIN, 1.5e12, *AT_STATION)  # type: ignore[arg-type]
    assert tracker.inside(VIN) == frozenset({"station"})
    assert tracker.update(VIN, T0 + 1, *AT_STATION) == []


@pytest.mark.parametrize(
    "options",
    [{"dwell_ms": -1}, {"max_gap_ms": 0}, {"max_vehicles": 0}, {"dwell_ms": True}],
)
def test_bad_options_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(GeoError):
        _tracker(**options)
