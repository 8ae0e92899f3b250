"""The fleet runner: the simulated-time grid, sparse sampling, determinism, events, and a paced
backfill against a real broker and database that stores every sample it sent."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from dataclasses import dataclass, field

import asyncpg

from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from ingest.store import TelemetryStore
from protocol.clock import SYSTEM_CLOCK
from protocol.endpoint import MqttEndpoint
from protocol.messages import EventType, SignalValue
from simulator.fleet import VehicleProfile, build_fleet
from simulator.runner import FleetMember, FleetRunner, LinkOptions, SimulatedVehicle
from simulator.timeline import SamplingPolicy, Timeline
from simulator.vehicle_model import Phase

HOUR_MS = 3_600_000
NOWHERE = MqttEndpoint("127.0.0.1", 1)  # the cars never connect in the offline tests
NO_BACKPRESSURE = LinkOptions(batch_samples=1_000_000)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def members(count: int, seed: int = 5) -> list[FleetMember]:
    return [FleetMember(p, "x", last_seq=0) for p in build_fleet(count, seed)]


def backfill(start_ms: int, hours: float) -> Timeline:
    return Timeline(
        start_ms=start_ms,
        wall_start_ms=now_ms(),
        speedup=None,
        end_ms=start_ms + int(hours * HOUR_MS),
    )


def backlog(runner: FleetRunner) -> dict[str, list[dict[str, object]]]:
    return {link.vin: [json.loads(s) for s in link._buffer] for link in runner.links}


@dataclass
class ScheduledCar:
    """A stand-in for the physics with a known schedule: drives during the given windows."""

    start_ms: int
    drives: list[tuple[int, int]]  # (from, to) in ms after start
    now: int = 0
    events: list[object] = field(default_factory=list)

    @property
    def phase(self) -> Phase:
        offset = self.now - self.start_ms
        driving = any(a <= offset < b for a, b in self.drives)
        return Phase.DRIVING if driving else Phase.PARKED

    def step(self, now_ms: int) -> None:
        self.now = now_ms

    def read_signals(self) -> dict[str, SignalValue]:
        return {"Vehicle.Speed": 50.0 if self.phase is Phase.DRIVING else 0.0}

    def drain_events(self) -> list[object]:
        events, self.events = self.events, []
        return events


def one_car_runner(
    car: ScheduledCar, timeline: Timeline, sampling: SamplingPolicy | None = None
) -> FleetRunner:
    def factory(
        profile: VehicleProfile, rng: random.Random, start_ms: int, substep: float
    ) -> SimulatedVehicle:
        return car

    return FleetRunner(
        members(1),
        NOWHERE,
        SYSTEM_CLOCK,
        timeline=timeline,
        sampling=sampling,
        links=NO_BACKPRESSURE,
        model_factory=factory,
    )


async def test_a_backfill_is_deterministic_given_seed_and_start() -> None:
    start = now_ms() - 5 * HOUR_MS

    async def backfilled(seed: int) -> dict[str, list[dict[str, object]]]:
        runner = FleetRunner(
            members(4),
            NOWHERE,
            SYSTEM_CLOCK,
            seed=seed,
            timeline=backfill(start, 3),
            links=NO_BACKPRESSURE,
        )
        await runner.advance(asyncio.Event())
        assert runner.finished
        return backlog(runner)

    runs = [await backfilled(9), await backfilled(9)]
    assert runs[0] == runs[1]
    assert await backfilled(10) != runs[0]
    # Timestamps are on the 15 s grid of the simulated clock, from start to the end.
    for samples in runs[0].values():
        stamps = [s["ts"] for s in samples]
        assert stamps == sorted(stamps) and stamps[0] == start
        assert all((ts - start) % 15_000 == 0 for ts in stamps)  # type: ignore[operator]
        assert stamps[-1] <= start + 3 * HOUR_MS


async def test_parked_cars_are_sampled_rarely_and_at_every_change_of_phase() -> None:
    start = now_ms() - 10 * HOUR_MS
    # Parked 1 h, drives 20 min, parked for the rest.
    car = ScheduledCar(start, [(HOUR_MS, HOUR_MS + 20 * 60_000)])

    runner = one_car_runner(
        car, backfill(start, 3), SamplingPolicy(driving_s=15, parked_s=600, max_substep_s=5)
    )
    await runner.advance(asyncio.Event())
    stamps = [s["ts"] - start for s in next(iter(backlog(runner).values()))]  # type: ignore[operator]
    parked_before = [t for t in stamps if t < HOUR_MS]
    driving = [t for t in stamps if HOUR_MS <= t < HOUR_MS + 20 * 60_000]
    parked_after = [t for t in stamps if t >= HOUR_MS + 20 * 60_000]
    assert parked_before == list(range(0, HOUR_MS, 600_000))  # every 10 minutes
    # The departure is seen within the parked poll (1 minute), then every 15 s.
    assert driving[0] == HOUR_MS and driving == list(range(HOUR_MS, HOUR_MS + 1_200_000, 15_000))
    # The arrival is sampled at once, then every 10 minutes.
    assert parked_after[0] == HOUR_MS + 1_200_000
    assert all(b - a == 600_000 for a, b in itertools.pairwise(parked_after))
    assert runner.sampled == len(stamps)


async def test_model_events_become_event_messages() -> None:
    start = now_ms() - HOUR_MS
    car = ScheduledCar(start, [])

    @dataclass
    class Dtc:
        ts_ms: int
        type: EventType = EventType.DTC
        code: str = "P0128"
        active: bool = True

    car.events = [Dtc(start)]

    runner = one_car_runner(car, backfill(start, 0.1))
    await runner.advance(asyncio.Event())
    pending = list(runner.links[0]._events)
    assert [(e.ts_ms, e.type, e.code, e.active) for e in pending] == [(start, "dtc", "P0128", True)]


async def test_a_paced_backfill_stores_every_sample_it_sent(
    amqtt_broker, pool: asyncpg.Pool, test_vehicles
) -> None:
    fleet = members(3, seed=21)
    for member in fleet:
        test_vehicles.passwords[member.profile.vin] = member.password
    worker = IngestWorker(
        TelemetryStore(pool), amqtt_broker.ingest_endpoint, IngestSettings(flush_interval_ms=50)
    )
    stop = asyncio.Event()
    ingest = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.subscribed.wait(), 15)
    start = now_ms() - 6 * HOUR_MS
    runner = FleetRunner(
        fleet,
        amqtt_broker.endpoint(),
        SYSTEM_CLOCK,
        timeline=backfill(start, 6),
        # Small batches so the backlog bound is exercised: at most 2 x 5 samples wait per car.
        links=LinkOptions(publish_interval_s=0.2, batch_samples=5, connect_rate_per_s=50),
    )
    peak_backlog = 0
    run = asyncio.create_task(runner.run(asyncio.Event()))
    try:
        while not run.done():
            peak_backlog = max(peak_backlog, runner.progress().backlog)
            await asyncio.sleep(0.01)
        await run
        progress = runner.progress()
        assert progress.finished and progress.backlog == 0 and progress.dropped == 0
        assert progress.published_samples == progress.sampled >= 3 * 6 * 6  # >= 1 per 10 min
        # Bounded memory: the ticker waited for the cars (2 batches each, plus one tick).
        assert peak_backlog <= 3 * (2 * 5 + 1)
        vins = [m.profile.vin for m in fleet]
        query = (
            "SELECT count(*) FROM (SELECT DISTINCT vin, ts FROM telemetry WHERE vin = ANY($1)) s"
        )
        deadline = time.monotonic() + 30
        while (stored := await pool.fetchval(query, vins)) < progress.published_samples:
            assert time.monotonic() < deadline, f"{stored} of {progress.published_samples} stored"
            await asyncio.sleep(0.2)
        assert stored == progress.published_samples
        assert worker.stats.rejects == {}
    finally:
        stop.set()
        await asyncio.wait_for(ingest, 30)
