"""The load of ``fleetlink bench ingest``, in a process of its own so that generating and
publishing never share the ingest event loop.

    python -m bench.publisher CONFIG.json REPORT.json

CONFIG (written by the benchmark, mode 0600: it holds the cars' passwords) names the broker, the
fleet (``build_fleet(len(passwords), seed)``, the same cars the benchmark registered) and the
duration. Each car is a realistic :class:`simulator.vehicle_model.VehicleModel` on its own MQTT
connection and publishes one telemetry message a second, QoS 1, each holding five samples of its
full signal set: the newest sample's ``ts`` is the wall clock at publish time, the others are
200 ms apart before it. A car publishes at most once a second (a late car does not catch up in
a burst), so the sample times of one car never collide.

Progress goes to stdout as JSON lines; at the end REPORT records exactly what was published and
acknowledged by the broker (PUBACK): per message ``[car index, seq, newest ts, n0..n4]`` with the
number of values of each sample, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from protocol.messages import Sample, TelemetryMessage, encode
from protocol.topics import telemetry_topic
from simulator.fleet import build_fleet
from simulator.vehicle_model import VehicleModel

SAMPLES_PER_MESSAGE = 5
SAMPLE_SPACING_MS = 200
PUBLISH_INTERVAL_S = 1.0
PUBLISH_TIMEOUT_S = 30.0
CONNECT_CONCURRENCY = 50
PROGRESS_INTERVAL_S = 0.25


@dataclass(frozen=True)
class PublisherConfig:
    host: str
    port: int
    passwords: list[str]  # one per car of build_fleet(len(passwords), seed), in that order
    seed: int
    seconds: float

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> PublisherConfig:
        data = json.loads(text)
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            passwords=[str(p) for p in data["passwords"]],
            seed=int(data["seed"]),
            seconds=float(data["seconds"]),
        )


@dataclass
class PublisherReport:
    messages: list[list[int]] = field(default_factory=list)  # acknowledged by the broker
    failed: list[list[int]] = field(default_factory=list)  # published, no PUBACK
    first_publish_ms: int | None = None
    last_publish_ms: int | None = None
    cpu_s: float = 0.0  # user + system CPU from the first to the last publish
    peak_rss_kib: int = 0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(event: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class LoadPublisher:
    def __init__(self, config: PublisherConfig) -> None:
        self.config = config
        self.report = PublisherReport()
        now_ms = time.time_ns() // 1_000_000
        self.profiles = build_fleet(len(config.passwords), config.seed)
        self.models = [
            VehicleModel(p, random.Random(f"bench:{config.seed}:{p.vin}"), now_ms - 1_000)
            for p in self.profiles
        ]
        self.published = 0

    def _client(self, index: int) -> aiomqtt.Client:
        vin = self.profiles[index].vin
        return aiomqtt.Client(
            self.config.host,
            self.config.port,
            identifier=vin,
            username=vin,
            password=self.config.passwords[index],
            clean_session=False,
            keepalive=60,
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            clients = [self._client(i) for i in range(len(self.profiles))]
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

            async def connect(client: aiomqtt.Client) -> None:
                async with gate:
                    await stack.enter_async_context(client)

            await asyncio.gather(*(connect(c) for c in clients))
            _emit({"event": "connected", "cars": len(clients)})
            loop = asyncio.get_running_loop()
            start = loop.time()
            end = start + self.config.seconds
            rng = random.Random(self.config.seed)
            offsets = [rng.uniform(0, PUBLISH_INTERVAL_S) for _ in clients]
            progress = asyncio.create_task(self._progress())
            cpu_at_start = _cpu_s()
            try:
                await asyncio.gather(
                    *(
                        self._car(i, client, start + offsets[i], end)
                        for i, client in enumerate(clients)
                    )
                )
            finally:
                progress.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress
            self.report.cpu_s = _cpu_s() - cpu_at_start
        self.report.peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    async def _car(self, index: int, client: aiomqtt.Client, first_due: float, end: float) -> None:
        loop = asyncio.get_running_loop()
        model = self.models[index]
        topic = telemetry_topic(self.profiles[index].vin)
        seq = 0
        newest_ms = 0
        due = first_due
        while due < end:
            await asyncio.sleep(max(due - loop.time(), 0.0))
            published_at = loop.time()
            # The newest sample is "now"; a car never reuses a sample time (PK is vin, ts).
            newest_ms = max(time.time_ns() // 1_000_000, newest_ms + 1_000)
            samples = []
            for back in range(SAMPLES_PER_MESSAGE - 1, -1, -1):
                ts = newest_ms - back * SAMPLE_SPACING_MS
                model.step(ts)
                samples.append(Sample(ts=ts, signals=model.read_signals()))
            seq += 1
            payload = encode(TelemetryMessage(seq=seq, samples=samples))
            record = [index, seq, newest_ms, *(len(s.signals) for s in samples)]
            if self.report.first_publish_ms is None:
                self.report.first_publish_ms = time.time_ns() // 1_000_000
            try:
                await client.publish(topic, payload, qos=1, timeout=PUBLISH_TIMEOUT_S)
            except aiomqtt.MqttError:
                self.report.failed.append(record)
            else:
                self.report.messages.append(record)
            self.published += 1
            self.report.last_publish_ms = time.time_ns() // 1_000_000
            # On schedule, but never two messages of one car less than a second apart.
            due = max(due + PUBLISH_INTERVAL_S, published_at + PUBLISH_INTERVAL_S)

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            _emit({"event": "progress", "published": self.published})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m bench.publisher CONFIG.json REPORT.json", file=sys.stderr)
        return 2
    config = PublisherConfig.from_json(Path(args[0]).read_text())
    publisher = LoadPublisher(config)
    asyncio.run(publisher.run())
    Path(args[1]).write_text(json.dumps(publisher.report.__dict__))
    _emit({"event": "done", "published": publisher.published})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
