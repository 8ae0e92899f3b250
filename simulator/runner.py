"""Runs a simulated fleet: one ticker steps every car's physics once per sample interval and
hands each car its sample; each car publishes over its own MQTT connection."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.clock import Clock
from protocol.endpoint import MqttEndpoint
from simulator.car import DEFAULT_PUBLISH_INTERVAL_S, CarLink
from simulator.fleet import VehicleProfile
from simulator.vehicle_model import VehicleModel

DEFAULT_SAMPLE_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class FleetMember:
    profile: VehicleProfile
    password: str
    last_seq: int | None = None  # where the car's message counter stopped last time


@dataclass(frozen=True, slots=True)
class FleetProgress:
    vehicles: int
    connected: int
    published_messages: int
    published_samples: int
    sampled: int
    backlog: int
    dropped: int


class FleetRunner:
    def __init__(
        self,
        members: Sequence[FleetMember],
        endpoint: MqttEndpoint,
        clock: Clock,
        *,
        seed: int = 1,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        publish_interval_s: float = DEFAULT_PUBLISH_INTERVAL_S,
    ) -> None:
        self._clock = clock
        self._sample_interval_s = sample_interval_s
        start_ms = clock.now_ms()
        self._cars: list[tuple[VehicleModel, CarLink]] = []
        for index, member in enumerate(members):
            rng = random.Random(f"{seed}:{index}:{member.profile.vin}")
            model = VehicleModel(member.profile, rng, start_ms)
            link = CarLink(
                member.profile.vin,
                member.password,
                endpoint,
                clock,
                publish_interval_s=publish_interval_s,
                rng=random.Random(f"link:{seed}:{member.profile.vin}"),
                last_seq=member.last_seq,
            )
            self._cars.append((model, link))
        self.sampled = 0

    @property
    def links(self) -> list[CarLink]:
        return [link for _, link in self._cars]

    def tick(self) -> None:
        """Step every car to now and record one sample each."""
        now = self._clock.now_ms()
        for model, link in self._cars:
            model.step(now)
            link.offer(now, model.read_signals())
        self.sampled += len(self._cars)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(link.run(stop)) for _, link in self._cars]
        try:
            loop = asyncio.get_running_loop()
            next_tick = loop.time()
            while not stop.is_set():
                self.tick()
                next_tick += self._sample_interval_s
                # Skip ticks rather than bunch them if the loop fell behind (e.g. a GC pause).
                next_tick = max(next_tick, loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), next_tick - loop.time())
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def sequence_numbers(self) -> dict[str, int]:
        """Each car's last seq, to be persisted like a car's non-volatile memory."""
        return {link.vin: link.seq for link in self.links}

    def progress(self) -> FleetProgress:
        links = self.links
        return FleetProgress(
            vehicles=len(links),
            connected=sum(1 for link in links if link.connected),
            published_messages=sum(link.counters.published_messages for link in links),
            published_samples=sum(link.counters.published_samples for link in links),
            sampled=self.sampled,
            backlog=sum(link.backlog for link in links),
            dropped=sum(link.counters.dropped_samples for link in links),
        )
