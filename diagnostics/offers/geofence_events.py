"""Enter, dwell and exit events per vehicle and geofence, derived from each car's positions.

Pure: the caller passes every position with its own timestamp (epoch ms from the car); nothing
here reads a clock, so replaying a recorded stream gives the same events.

Semantics, per vehicle (one position stream each) and fence:

- ENTER on the first position inside the fence -- including the very first position ever seen
  for the vehicle (the tracker cannot know it was already there; an offer engine would rather
  treat it as an arrival than never notice it).
- DWELL once per visit, on the first position at which the vehicle has been inside
  continuously for ``>= dwell_ms`` since that visit's ENTER (``ts - enter_ts >= dwell_ms``).
  Dwell is only noticed when a position arrives: there is no timer.
- EXIT on the first position outside the fence, stamped with that position's time.
- A position with ``ts_ms <=`` the vehicle's last accepted timestamp is ignored: resends and
  out-of-order data never produce an event twice or move a car backwards.
- A gap of more than ``max_gap_ms`` between two positions ends every visit: EXIT events
  stamped at the last position before the gap, and the new position starts afresh (ENTER if
  inside, the dwell clock restarted). A car parked at a station overnight while the tracker
  received nothing did not provably stay: it must not fire a DWELL at its next position.
- Events returned by one call are ordered EXIT, then ENTER, then DWELL; within a kind by fence
  id. (Exits first: whoever turns events into offers sees a car leave one station before it
  arrives at the next.)
- Memory is bounded: with more than ``max_vehicles`` tracked, the least recently updated
  vehicle is forgotten without EXIT events, as by :meth:`GeofenceTracker.forget`; if it comes
  back it starts afresh like a new vehicle. Positions that are ignored do not count as updates.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

from diagnostics.offers.geo import GeoError
from diagnostics.offers.geo_index import GeofenceIndex


class GeofenceEventKind(StrEnum):
    ENTER = "enter"
    EXIT = "exit"
    DWELL = "dwell"


# Order of events within one update (see the module docstring).
_ORDER = {GeofenceEventKind.EXIT: 0, GeofenceEventKind.ENTER: 1, GeofenceEventKind.DWELL: 2}


@dataclass(frozen=True, slots=True)
class GeofenceEvent:
    vin: str
    fence_id: str
    kind: GeofenceEventKind
    ts_ms: int  # the position's timestamp (a gap's EXIT: the last position before the gap)


class _Vehicle:
    """Mutable per-vehicle state; private, so it can stay a plain slotted class."""

    __slots__ = ("dwelled", "entered", "last_ts")

    def __init__(self, ts_ms: int) -> None:
        self.last_ts = ts_ms
        self.entered: dict[str, int] = {}  # fence id -> ENTER timestamp of the current visit
        self.dwelled: set[str] = set()  # fences whose DWELL this visit already fired


def _positive_int(what: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GeoError(f"{what} must be an integer >= {minimum}, got {value!r}", value=value)
    return value


class GeofenceTracker:
    """Turns each vehicle's positions into :class:`GeofenceEvent` s (see the module docstring)."""

    __slots__ = ("_dwell_ms", "_index", "_max_gap_ms", "_max_vehicles", "_vehicles")

    def __init__(
        self,
        index: GeofenceIndex,
        *,
        dwell_ms: int = 300_000,
        max_gap_ms: int = 1_800_000,
        max_vehicles: int = 200_000,
    ) -> None:
        self._index = index
        self._dwell_ms = _positive_int("dwell_ms", dwell_ms, 0)
        self._max_gap_ms = _positive_int("max_gap_ms", max_gap_ms, 1)
        self._max_vehicles = _positive_int("max_vehicles", max_vehicles, 1)
        # Least recently updated first: eviction pops from the front.
        self._vehicles: OrderedDict[str, _Vehicle] = OrderedDict()

    def __len__(self) -> int:
        """Vehicles currently tracked."""
        return len(self._vehicles)

    def update(self, vin: str, ts_ms: int, lat: float, lon: float) -> list[GeofenceEvent]:
        """The events this position causes (often none); :class:`GeoError` for a position out
        of range or a timestamp that is not an integer."""
        if isinstance(ts_ms, bool) or not isinstance(ts_ms, int):
            raise GeoError(f"ts_ms must be an integer, got {ts_ms!r}", value=ts_ms)
        # Checked before the timestamp, so garbage is refused even when it would be ignored.
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise GeoError(f"position ({lat}, {lon}) out of range", value=(lat, lon))
        vehicle = self._vehicles.get(vin)
        if vehicle is not None and ts_ms <= vehicle.last_ts:
            return []  # resent or out of order: already accounted for
        now_inside = {fence.id for fence in self._index.containing(lat, lon)}

        events: list[GeofenceEvent] = []
        if vehicle is None:
            vehicle = _Vehicle(ts_ms)
            self._vehicles[vin] = vehicle
            if len(self._vehicles) > self._max_vehicles:
                self._vehicles.popitem(last=False)
        else:
            if ts_ms - vehicle.last_ts > self._max_gap_ms:
                # Nothing is known about the gap: close the visits where we last saw the car.
                events.extend(
                    GeofenceEvent(vin, fence_id, GeofenceEventKind.EXIT, vehicle.last_ts)
                    for fence_id in vehicle.entered
                )
                vehicle.entered.clear()
                vehicle.dwelled.clear()
            vehicle.last_ts = ts_ms
            self._vehicles.move_to_end(vin)

        entered, dwelled = vehicle.entered, vehicle.dwelled
        for fence_id in [f for f in entered if f not in now_inside]:
            del entered[fence_id]
            dwelled.discard(fence_id)
            events.append(GeofenceEvent(vin, fence_id, GeofenceEventKind.EXIT, ts_ms))
        for fence_id in now_inside:
            enter_ts = entered.get(fence_id)
            if enter_ts is None:
                entered[fence_id] = enter_ts = ts_ms
                events.append(GeofenceEvent(vin, fence_id, GeofenceEventKind.ENTER, ts_ms))
            if fence_id not in dwelled and ts_ms - enter_ts >= self._dwell_ms:
                dwelled.add(fence_id)
                events.append(GeofenceEvent(vin, fence_id, GeofenceEventKind.DWELL, ts_ms))
        if len(events) > 1:
            events.sort(key=lambda event: (_ORDER[event.kind], event.fence_id))
        return events

    def forget(self, vin: str) -> None:
        """Drop everything known about ``vin`` (no events); unknown VINs are fine."""
        self._vehicles.pop(vin, None)

    def inside(self, vin: str) -> frozenset[str]:
        """Ids of the fences the vehicle is currently inside (empty if not tracked)."""
        vehicle = self._vehicles.get(vin)
        return frozenset(vehicle.entered) if vehicle is not None else frozenset()
