"""The stream side of the offers engine: which committed samples make a rule eligible. Pure and
synchronous: samples in, triggers and geofence events out; time is the samples' own.

A trigger says "this rule's condition held for this car at this moment"; whether an offer is
sent is decided later, with the customer's consent, caps and quiet hours (``guards``), in the
decision's transaction. The engine keeps per car only what the rules need: its latest position,
heading, speed, fuel level and state of charge, service state, and when each rule last fired
(a condition that holds for a whole drive triggers once per ``retrigger_ms``, not on every
sample).

- ``low_energy_near_station``: fuel (or state of charge) below the rule's level, and one of the
  rule partner's stations of the matching kind within ``max_distance_km``; a moving car only
  counts stations ahead of it (bearing within ``max_heading_deviation_deg`` of its heading).
- ``service_near_dealer``: the car *dwells* in the area of a dealer or service centre (a car
  driving past is not stopping by), and its service is due or it has an open maintenance
  alert (:meth:`TriggerEngine.set_alerting`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from diagnostics.offers.geo import Geofence, bearing_difference_deg, initial_bearing_deg
from diagnostics.offers.geo_index import GeofenceIndex
from diagnostics.offers.geofence_events import GeofenceEvent, GeofenceEventKind, GeofenceTracker
from diagnostics.offers.rules import (
    LowEnergyParams,
    OfferRule,
    RuleKind,
    ServiceNearDealerParams,
)
from diagnostics.stream_input import Sample
from protocol.places import PlaceKind

LAT = "Vehicle.CurrentLocation.Latitude"
LON = "Vehicle.CurrentLocation.Longitude"
HEADING = "Vehicle.CurrentLocation.Heading"
SPEED = "Vehicle.Speed"
FUEL = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
SERVICE_DUE = "Vehicle.Service.IsServiceDue"
DISTANCE_TO_SERVICE = "Vehicle.Service.DistanceToService"

#: Below this speed a car counts as standing: any station in reach is "on the way".
STANDING_KMH = 5.0
DEFAULT_RETRIGGER_MS = 30 * 60_000
DEFAULT_MAX_VEHICLES = 200_000


@dataclass(frozen=True, slots=True)
class Trigger:
    rule_id: str
    rule_version: int
    vin: str
    ts_ms: int  # event time of the sample that met the condition
    #: What makes two triggers the same offer (here: the place), for ``already_offered``.
    subject_key: str
    place_id: str | None
    speed_kmh: float | None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EngineOutcome:
    triggers: list[Trigger]
    events: list[GeofenceEvent]


@dataclass(slots=True)
class _Car:
    ts_ms: int = -1
    lat: float | None = None
    lon: float | None = None
    heading: float | None = None
    speed: float | None = None
    fuel: float | None = None
    soc: float | None = None
    service_due: bool = False
    distance_to_service: float | None = None
    fired: dict[str, int] = field(default_factory=dict)  # rule id -> ts of its last trigger


class TriggerEngine:
    def __init__(
        self,
        rules: Iterable[OfferRule],
        index: GeofenceIndex,
        *,
        dwell_ms: int = 300_000,
        retrigger_ms: int = DEFAULT_RETRIGGER_MS,
        max_vehicles: int = DEFAULT_MAX_VEHICLES,
    ) -> None:
        self._dwell_ms = dwell_ms
        self._retrigger_ms = retrigger_ms
        self._max_vehicles = max_vehicles
        self._cars: OrderedDict[str, _Car] = OrderedDict()
        self._alerting: frozenset[str] = frozenset()
        self.configure(rules, index)

    def configure(self, rules: Iterable[OfferRule], index: GeofenceIndex) -> None:
        """New rules or places (an administrator's edit). The cars' state is kept; geofence
        visits start afresh when the places change."""
        self._rules = [r for r in rules if r.enabled and r.kind in _STREAM_HANDLERS]
        if getattr(self, "_index", None) is not index:
            self._index = index
            self._tracker = GeofenceTracker(
                index, dwell_ms=self._dwell_ms, max_vehicles=self._max_vehicles
            )

    @property
    def index(self) -> GeofenceIndex:
        """The places in use; passing it back to :meth:`configure` keeps the visits."""
        return self._index

    def set_alerting(self, vins: Iterable[str]) -> None:
        """The cars with an open maintenance alert (refreshed by the runtime)."""
        self._alerting = frozenset(vins)

    def evaluate(self, samples: Sequence[Sample]) -> EngineOutcome:
        """Samples in (VIN, time) order, as ingest commits them."""
        triggers: list[Trigger] = []
        events: list[GeofenceEvent] = []
        for sample in samples:
            car = self._car(sample.vin)
            if sample.ts_ms <= car.ts_ms:
                continue  # resent or out of order: already seen, or older than what we know
            _absorb(car, sample)
            entered: list[GeofenceEvent] = []
            if car.lat is not None and car.lon is not None and _has_position(sample):
                entered = self._tracker.update(sample.vin, sample.ts_ms, car.lat, car.lon)
                events.extend(entered)
            for rule in self._rules:
                trigger = _STREAM_HANDLERS[rule.kind](self, rule, sample, car, entered)
                if trigger is not None:
                    car.fired[rule.id] = sample.ts_ms
                    triggers.append(trigger)
        return EngineOutcome(triggers, events)

    def _car(self, vin: str) -> _Car:
        car = self._cars.get(vin)
        if car is None:
            car = self._cars[vin] = _Car()
            if len(self._cars) > self._max_vehicles:
                old, _ = self._cars.popitem(last=False)
                self._tracker.forget(old)
        else:
            self._cars.move_to_end(vin)
        return car

    def _may_fire(self, rule: OfferRule, car: _Car, ts_ms: int) -> bool:
        last = car.fired.get(rule.id)
        return last is None or ts_ms - last >= self._retrigger_ms

    def _low_energy(
        self, rule: OfferRule, sample: Sample, car: _Car, _events: list[GeofenceEvent]
    ) -> Trigger | None:
        params = rule.params
        assert isinstance(params, LowEnergyParams)
        if car.lat is None or car.lon is None or not _has_position(sample):
            return None
        if not self._may_fire(rule, car, sample.ts_ms):
            return None
        for level, limit, kind in (
            (car.fuel, params.fuel_below_pct, PlaceKind.FUEL_STATION),
            (car.soc, params.soc_below_pct, PlaceKind.CHARGING_STATION),
        ):
            if level is None or level >= limit:
                continue
            moving = car.speed is not None and car.speed >= STANDING_KMH
            for fence, distance_m in self._index.near(
                car.lat, car.lon, params.max_distance_km * 1000.0, kinds=(kind,)
            ):
                if fence.partner_id != params.partner_id:
                    continue
                if moving and car.heading is not None:
                    lat, lon = fence.geometry.anchor
                    bearing = initial_bearing_deg(car.lat, car.lon, lat, lon)
                    off_course = bearing_difference_deg(bearing, car.heading)
                    if off_course > params.max_heading_deviation_deg:
                        continue
                return _at_place(
                    rule,
                    sample,
                    car,
                    fence,
                    partner_id=params.partner_id,
                    distance_m=round(distance_m),
                    level_pct=round(level, 1),
                    energy="fuel" if kind is PlaceKind.FUEL_STATION else "charge",
                )
        return None

    def _service_near_dealer(
        self, rule: OfferRule, sample: Sample, car: _Car, events: list[GeofenceEvent]
    ) -> Trigger | None:
        params = rule.params
        assert isinstance(params, ServiceNearDealerParams)
        due = car.service_due or (
            car.distance_to_service is not None
            and car.distance_to_service < params.distance_to_service_below_km
        )
        alerting = sample.vin in self._alerting
        if not (due or alerting) or not self._may_fire(rule, car, sample.ts_ms):
            return None
        for event in events:
            if event.kind is not GeofenceEventKind.DWELL:
                continue
            fence = self._index.get(event.fence_id)
            if fence is None or fence.kind not in params.place_kinds:
                continue
            lat, lon = fence.geometry.anchor  # where to look for a workshop (polygons too)
            return _at_place(
                rule,
                sample,
                car,
                fence,
                reason="service_due" if due else "maintenance_alert",
                place_lat=round(lat, 6),
                place_lon=round(lon, 6),
            )
        return None


def _at_place(
    rule: OfferRule, sample: Sample, car: _Car, fence: Geofence, **details: Any
) -> Trigger:
    """The rule met at ``fence``: the place is the offer's subject (one offer per place)."""
    return Trigger(
        rule_id=rule.id,
        rule_version=rule.version,
        vin=sample.vin,
        ts_ms=sample.ts_ms,
        subject_key=f"place:{fence.id}",
        place_id=fence.id,
        speed_kmh=car.speed,
        details={"place_name": fence.name, **details},
    )


def _has_position(sample: Sample) -> bool:
    return sample.number(LAT) is not None and sample.number(LON) is not None


def _absorb(car: _Car, sample: Sample) -> None:
    """Carry each signal forward: a sample holds only what changed or was due."""
    car.ts_ms = sample.ts_ms
    lat, lon = sample.number(LAT), sample.number(LON)
    if lat is not None and lon is not None:
        car.lat, car.lon = lat, lon
    for attr, name in (
        ("heading", HEADING),
        ("speed", SPEED),
        ("fuel", FUEL),
        ("soc", SOC),
        ("distance_to_service", DISTANCE_TO_SERVICE),
    ):
        value = sample.number(name)
        if value is not None:
            setattr(car, attr, value)
    due = sample.flag(SERVICE_DUE)
    if due is not None:
        car.service_due = due


_STREAM_HANDLERS = {
    RuleKind.LOW_ENERGY_NEAR_STATION: TriggerEngine._low_energy,
    RuleKind.SERVICE_NEAR_DEALER: TriggerEngine._service_near_dealer,
}
