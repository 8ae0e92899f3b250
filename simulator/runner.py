"""Runs a simulated fleet: one ticker steps every car's physics on the simulated clock and hands
each car its samples and events; each car publishes over its own MQTT connection.

The ticker walks a grid of simulated instants ``start + k * tick`` (``tick`` = the driving
sample interval), so the same seed and start give the same sample timestamps and signals.
Each tick it steps the cars that are due: a driving car every tick, a parked car every
``parked_poll`` (it is sampled only every ``parked_s``, and once more when it starts or stops
driving).

Pacing (see :mod:`simulator.timeline`): in real time the ticker follows the wall clock and a car
that cannot publish fast enough buffers (bounded, oldest dropped). In the accelerated and
backfill modes simulated time also waits for the cars: the next tick is taken only when no car
with coverage has :data:`HIGH_WATER_BATCHES` batches waiting, and each car has one message in
flight until its PUBACK. So the fleet goes exactly as fast as the broker accepts, with memory
bounded by fleet size times the high-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from protocol.clock import Clock
from protocol.endpoint import MqttEndpoint
from protocol.messages import SignalValue
from simulator.car import DEFAULT_BATCH_SAMPLES, DEFAULT_PUBLISH_INTERVAL_S, CarLink
from simulator.connectivity import NO_OUTAGES, Connectivity, OutagePattern
from simulator.fleet import VehicleProfile
from simulator.onboard import Onboard, OnboardOptions
from simulator.pacing import DEFAULT_CONNECT_RATE_PER_S, ConnectPacer
from simulator.timeline import SamplingPolicy, Timeline
from simulator.vehicle_model import Phase, VehicleModel

DEFAULT_SAMPLE_INTERVAL_S = 1.0
#: A paced run waits while a car with coverage has this many batches waiting.
HIGH_WATER_BATCHES = 2
BACKPRESSURE_POLL_S = 0.005
DEFAULT_STOP_FLUSH_S = 15.0
FINISH_DRAIN_S = 60.0


@dataclass(frozen=True, slots=True)
class FleetMember:
    profile: VehicleProfile
    password: str
    last_seq: int | None = None  # where the car's message counter stopped last time


class SimulatedVehicle(Protocol):
    """What the runner needs of a car's physics (:class:`simulator.vehicle_model.VehicleModel`)."""

    @property
    def phase(self) -> Phase: ...

    def step(self, now_ms: int) -> None: ...

    def read_signals(self) -> dict[str, SignalValue]: ...

    def drain_events(self) -> Sequence[Any]: ...


#: Builds one car's physics: (profile, its random stream, start time, physics sub-step in s).
ModelFactory = Callable[[VehicleProfile, random.Random, int, float], SimulatedVehicle]


class GroundTruthSink(Protocol):
    """Where the models' ground-truth records go (``simulator.ground_truth.GroundTruthWriter``)."""

    def write(self, records: Sequence[Any]) -> None: ...


def default_model_factory(
    profile: VehicleProfile, rng: random.Random, start_ms: int, max_substep_s: float
) -> SimulatedVehicle:
    return VehicleModel(profile, rng, start_ms, max_substep_s=max_substep_s)


@dataclass(frozen=True, slots=True)
class FleetProgress:
    vehicles: int
    connected: int
    published_messages: int
    published_samples: int
    published_events: int
    sampled: int
    backlog: int
    dropped: int
    connects: int
    connection_losses: int
    connect_failures: int
    offline_by_pattern: int  # cars without coverage right now (tunnel, garage, dead zone)
    sim_ms: int | None  # the simulated instant of the last tick (None before the first)
    finished: bool  # a run with an end (backfill, replay) reached it


@dataclass(slots=True)
class _Car:
    model: SimulatedVehicle
    link: CarLink
    onboard: Onboard  # what the car does with commands (notifications, entitlements, ...)
    radio: Connectivity | None
    next_step_ms: int
    last_sample_ms: int | None = None
    driving: bool = False


@dataclass(frozen=True, slots=True)
class LinkOptions:
    publish_interval_s: float = DEFAULT_PUBLISH_INTERVAL_S
    batch_samples: int = DEFAULT_BATCH_SAMPLES
    connect_rate_per_s: float = DEFAULT_CONNECT_RATE_PER_S
    stop_flush_s: float = DEFAULT_STOP_FLUSH_S


class FleetRunner:
    def __init__(
        self,
        members: Sequence[FleetMember],
        endpoint: MqttEndpoint,
        clock: Clock,
        *,
        seed: int = 1,
        timeline: Timeline | None = None,
        sampling: SamplingPolicy | None = None,
        publish_interval_s: float = DEFAULT_PUBLISH_INTERVAL_S,
        links: LinkOptions | None = None,
        outages: OutagePattern = NO_OUTAGES,
        model_factory: ModelFactory = default_model_factory,
        ground_truth: GroundTruthSink | None = None,
        onboard: OnboardOptions | None = None,
    ) -> None:
        """``onboard``: the cars' command handling, e.g. the pinned entitlement keys (every
        car subscribes to its commands topic; without keys it refuses every entitlement)."""
        self._clock = clock
        onboard_options = onboard or OnboardOptions()
        now = clock.now_ms()
        self.timeline = timeline or Timeline(start_ms=now, wall_start_ms=now)
        self.sampling = sampling or self.timeline.sampling()
        options = links or LinkOptions(publish_interval_s=publish_interval_s)
        self._options = options
        self._ground_truth = ground_truth
        pacer = ConnectPacer(options.connect_rate_per_s)
        start_ms = self.timeline.start_ms
        self._cars: list[_Car] = []
        for index, member in enumerate(members):
            vin = member.profile.vin
            rng = random.Random(f"{seed}:{index}:{vin}")
            model = model_factory(member.profile, rng, start_ms, self.sampling.max_substep_s)
            link = CarLink(
                vin,
                member.password,
                endpoint,
                clock,
                publish_interval_s=options.publish_interval_s,
                batch_samples=options.batch_samples,
                rng=random.Random(f"link:{seed}:{vin}"),
                # seq follows the wall clock, not simulated time: a backfill after a live run
                # must not restart below the stored last seq.
                last_seq=member.last_seq,
                pacer=pacer,
            )
            # The car's own clock (the wall clock, as GNSS time) judges entitlement windows.
            onboard_car = Onboard(
                vin, clock, link, onboard_options, ota_status=link.publish_ota_status
            )
            link.handle_commands(onboard_car.dispatcher)
            radio = None
            if outages.enabled:
                radio = Connectivity(outages, random.Random(f"radio:{seed}:{vin}"), start_ms)
            self._cars.append(_Car(model, link, onboard_car, radio, next_step_ms=start_ms))
        self._high_water = options.batch_samples * HIGH_WATER_BATCHES
        self._full: list[CarLink] = []  # cars that reached the high-water mark this tick
        self.sampled = 0
        self.sim_ms: int | None = None
        self.finished = False
        self.stall_s = 0.0  # wall time the ticker spent waiting for the cars' backlogs

    @property
    def links(self) -> list[CarLink]:
        return [car.link for car in self._cars]

    def onboard(self, vin: str) -> Onboard:
        """The command side of car ``vin``: its inbox, entitlements, ``features()``."""
        for car in self._cars:
            if car.link.vin == vin:
                return car.onboard
        raise KeyError(vin)

    def tick(self, sim_ms: int | None = None) -> None:
        """Step the cars that are due at ``sim_ms`` (default: the clock) and record their
        samples and events."""
        now = self._clock.now_ms() if sim_ms is None else sim_ms
        policy = self.sampling
        driving_ms, parked_ms = policy.driving_ms, policy.parked_ms
        sink = self._ground_truth
        high_water = self._high_water
        sampled = 0
        for car in self._cars:
            if now < car.next_step_ms:
                continue
            model, link = car.model, car.link
            model.step(now)
            driving = model.phase is Phase.DRIVING
            if car.radio is not None:
                link.set_radio(car.radio.update(now, driving=driving))
            for event in model.drain_events():
                link.offer_event(
                    event.ts_ms,
                    str(event.type),
                    code=getattr(event, "code", None),
                    active=getattr(event, "active", None),
                )
            if sink is not None:
                drain = getattr(model, "drain_ground_truth", None)
                if drain is not None and (records := drain()):
                    sink.write(records)
            last = car.last_sample_ms
            if driving or driving != car.driving or last is None or now - last >= parked_ms:
                link.offer(now, model.read_signals())
                car.last_sample_ms = now
                sampled += 1
                if link.backlog >= high_water:
                    self._full.append(link)
            car.driving = driving
            car.next_step_ms = now + driving_ms if driving else self._next_parked_step(car, now)
        self.sampled += sampled
        self.sim_ms = now

    def _next_parked_step(self, car: _Car, now: int) -> int:
        """A parked car is stepped when its next sample is due or when it drives off, whichever
        is first; without a known departure (a charging session) every parked poll."""
        # A property of VehicleModel; stand-in models may not have it.
        departs_ms: int | None = getattr(car.model, "next_departure_ms", None)
        if departs_ms is None:
            return now + self.sampling.parked_poll_ms
        last = car.last_sample_ms if car.last_sample_ms is not None else now
        return max(min(last + self.sampling.parked_ms, departs_ms), now + 1)

    async def _wait_for_backlogs(self, stop: asyncio.Event) -> None:
        """Wait until no car with coverage holds HIGH_WATER_BATCHES batches. Only the cars
        that reached the mark at a tick are watched (tick notes them): no scan of the fleet."""
        high_water = self._high_water
        blockers = [link for link in self._full if link.backlog >= high_water and link.radio]
        self._full.clear()
        if not blockers:
            return
        started = time.monotonic()
        while blockers and not stop.is_set():
            await asyncio.sleep(BACKPRESSURE_POLL_S)
            blockers = [link for link in blockers if link.backlog >= high_water and link.radio]
        self.stall_s += time.monotonic() - started

    async def advance(self, stop: asyncio.Event) -> None:
        """Walk the simulated clock through the timeline, stepping and sampling the cars (what
        :meth:`run` does besides connecting them)."""
        timeline = self.timeline
        tick_ms = self.sampling.driving_ms
        sim = timeline.start_ms
        while not stop.is_set():
            if timeline.paced_by_backend:
                await self._wait_for_backlogs(stop)
            else:
                # Real time: skip ticks rather than bunch them if the loop fell behind.
                behind = timeline.target_ms(self._clock.now_ms()) - sim
                if behind > tick_ms:
                    sim += (behind // tick_ms) * tick_ms
            if stop.is_set():
                break
            self.tick(sim)
            if timeline.finished(sim):
                self.finished = True
                return
            sim += tick_ms
            if timeline.end_ms is not None:
                sim = min(sim, timeline.end_ms)
            wait_ms = timeline.wall_at(sim) - self._clock.now_ms()
            if wait_ms > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait_ms / 1000)
            else:
                await asyncio.sleep(0)  # let the cars publish between ticks of a backfill

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` (or the timeline's end); then the cars flush within
        ``stop_flush_s`` and disconnect."""
        links_stop = asyncio.Event()
        flush_s = self._options.stop_flush_s
        tasks = [
            asyncio.create_task(car.link.run(links_stop, flush_timeout_s=flush_s))
            for car in self._cars
        ]
        try:
            await self.advance(stop)
            if self.finished:
                # Let the cars with coverage send what they hold (at most HIGH_WATER_BATCHES
                # batches each: seconds), then stop them.
                deadline = time.monotonic() + max(flush_s, FINISH_DRAIN_S)
                while time.monotonic() < deadline and self._undelivered():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.05)
            links_stop.set()
            await asyncio.wait(tasks, timeout=flush_s + 10.0)
        finally:
            links_stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _undelivered(self) -> bool:
        return any(c.link.backlog and c.link.radio for c in self._cars)

    def sequence_numbers(self) -> dict[str, int]:
        """Each car's last seq, to be persisted like a car's non-volatile memory."""
        return {car.link.vin: car.link.seq for car in self._cars}

    def progress(self) -> FleetProgress:
        connected = published = samples = events = backlog = dropped = losses = failures = 0
        offline = connects = 0
        for car in self._cars:
            link = car.link
            counters = link.counters
            connected += link.connected
            published += counters.published_messages
            samples += counters.published_samples
            events += counters.published_events
            backlog += link.backlog
            dropped += counters.dropped_samples
            connects += counters.connects
            losses += counters.connection_losses
            failures += counters.connect_failures
            offline += not link.radio
        return FleetProgress(
            vehicles=len(self._cars),
            connected=connected,
            published_messages=published,
            published_samples=samples,
            published_events=events,
            sampled=self.sampled,
            backlog=backlog,
            dropped=dropped,
            connects=connects,
            connection_losses=losses,
            connect_failures=failures,
            offline_by_pattern=offline,
            sim_ms=self.sim_ms,
            finished=self.finished,
        )
