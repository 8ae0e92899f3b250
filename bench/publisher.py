"""The load of ``fleetlink bench ingest``, in a process of its own so that generating and
publishing never share the ingest event loop.

    python -m bench.publisher CONFIG.json REPORT.json

CONFIG (written by the benchmark, mode 0600: it holds the cars' passwords) names the broker, the
fleet (``build_fleet(len(passwords), seed)``, the same cars the benchmark registered), the
duration and the load shape (:class:`LoadShape`): every car samples its full signal set at
``sample_hz`` and uploads one telemetry message every ``upload_interval_s`` seconds, QoS 1,
holding the ``sample_hz * upload_interval_s`` samples of that interval, evenly spaced
``1000 / sample_hz`` ms apart. The newest sample's ``ts`` is the wall clock at publish time. A
car publishes at most once per interval (a late car does not catch up in a burst) and its newest
``ts`` advances by at least a whole interval per message, so the sample times of one car never
collide.

Cheap by construction, so that the publisher leaves the CPU to ingest:

- Before the timed phase (and before it reports ``connected``) each car runs its own realistic
  :class:`simulator.vehicle_model.VehicleModel` for a pool of samples (:func:`pool_samples`:
  two messages' worth, only one for the default fleet of 6,250 cars so that start-up stays
  around 15-20 s) and encodes each sample's ``signals`` object once, to compact JSON. A message is
  then assembled from those bytes and the digits of ``seq`` and ``ts`` only
  (:func:`payload_parts`), cycling through the pool. So **a car's values repeat with the
  pool's period** (``pool_samples / sample_hz`` seconds; ``ts`` and ``seq`` never repeat):
  the distributions of the values are those of the simulator, their sequence over a long run
  is not.
- Each car keeps its own MQTT connection (its own credentials: the per-VIN ACL is real) with a
  persistent session, QoS 1, through :mod:`bench.mqtt_wire`, which hands a message to the
  kernel as the list of byte strings it was assembled from. One loop over a heap of due times
  publishes for all cars.

At the default shape this costs 0.15-0.2 CPU core for 2.5 million values a second (a third of
it the kernel copying the payloads into the loopback connections).

Progress goes to stdout as JSON lines; at the end REPORT records exactly what was published and
acknowledged by the broker (PUBACK): the spacing of the samples (``sample_spacing_ms``) and per
message ``[car index, seq, newest ts, n_0 .. n_k]`` with the number of values of each of its
samples, oldest first (so the message held ``len(record) - 3`` samples, the newest at ``newest
ts`` and each other one ``sample_spacing_ms`` before the next).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import itertools
import json
import math
import random
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from bench.mqtt_wire import Connection, topic_field
from protocol.messages import MAX_SAMPLES_PER_MESSAGE
from protocol.topics import telemetry_topic
from simulator.fleet import VehicleProfile, build_fleet
from simulator.signal_readout import SignalValue
from simulator.vehicle_model import VehicleModel

DEFAULT_SAMPLE_HZ = 10.0
DEFAULT_UPLOAD_INTERVAL_S = 5.0
PUBLISH_TIMEOUT_S = 30.0  # a message without PUBACK this long after the last publish failed
CONNECT_TIMEOUT_S = 30.0
CONNECT_CONCURRENCY = 50  # CONNECTs awaiting their CONNACK at once
KEEPALIVE_S = 60
HOUSEKEEPING_INTERVAL_S = 5.0  # how often idle connections are pinged (KEEPALIVE_S / 2)
PROGRESS_INTERVAL_S = 0.25
TICK_S = 0.005  # the publishing loop sleeps at least this long (a car may be this late)
POOL_MESSAGES = 2  # a car's pool holds this many messages' worth of samples ...
#: ... but the whole fleet at most this many, one message's worth for the default 6,250 cars:
#: each costs 40-60 us to generate (14-20 s for all of them here) and up to 2.5 KB (about
#: 200 MB in all, as the repeated readings of a parked car are one object).
POOL_BUDGET_SAMPLES = 312_500


@dataclass(frozen=True)
class LoadShape:
    """How each car samples and uploads; see the module docstring."""

    sample_hz: float = DEFAULT_SAMPLE_HZ
    upload_interval_s: float = DEFAULT_UPLOAD_INTERVAL_S

    def __post_init__(self) -> None:
        if not (self.sample_hz > 0 and math.isfinite(self.sample_hz)):
            raise ValueError(f"sample rate must be positive, not {self.sample_hz} Hz")
        if not (self.upload_interval_s > 0 and math.isfinite(self.upload_interval_s)):
            raise ValueError(f"upload interval must be positive, not {self.upload_interval_s} s")
        # ts are integer milliseconds: samples are evenly spaced only on a whole-ms spacing.
        spacing = 1000 / self.sample_hz
        if not _is_whole(spacing):
            raise ValueError(
                f"sample rate {self.sample_hz:g} Hz: 1000 / rate must be a whole number of"
                " milliseconds (e.g. 1, 2, 4, 5, 8, 10, 20, 25, 50 or 100 Hz)"
            )
        count = self.sample_hz * self.upload_interval_s
        if not _is_whole(count) or not 1 <= round(count) <= MAX_SAMPLES_PER_MESSAGE:
            raise ValueError(
                f"{self.sample_hz:g} Hz x {self.upload_interval_s:g} s = {count:g} samples per"
                f" message: must be a whole number from 1 to {MAX_SAMPLES_PER_MESSAGE}"
            )

    @property
    def sample_spacing_ms(self) -> int:
        return round(1000 / self.sample_hz)

    @property
    def samples_per_message(self) -> int:
        return round(self.sample_hz * self.upload_interval_s)

    @property
    def upload_interval_ms(self) -> int:
        return self.samples_per_message * self.sample_spacing_ms


def _is_whole(value: float) -> bool:
    return abs(value - round(value)) < 1e-9 * max(1.0, abs(value))


def pool_samples(shape: LoadShape, cars: int) -> int:
    """Samples each car pre-generates: :data:`POOL_MESSAGES` messages' worth within the fleet's
    :data:`POOL_BUDGET_SAMPLES`, at least one."""
    wanted = POOL_MESSAGES * shape.samples_per_message
    return max(1, min(wanted, POOL_BUDGET_SAMPLES // max(cars, 1)))


@dataclass(frozen=True)
class PublisherConfig:
    host: str
    port: int
    passwords: list[str]  # one per car of build_fleet(len(passwords), seed), in that order
    seed: int
    seconds: float
    sample_hz: float = DEFAULT_SAMPLE_HZ
    upload_interval_s: float = DEFAULT_UPLOAD_INTERVAL_S
    # Ingest's limit: a message above it would only be dead-lettered, so refuse to start.
    max_payload_bytes: int | None = None

    @property
    def shape(self) -> LoadShape:
        return LoadShape(self.sample_hz, self.upload_interval_s)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PublisherConfig:
        data = json.loads(text)
        limit = data.get("max_payload_bytes")
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            passwords=[str(p) for p in data["passwords"]],
            seed=int(data["seed"]),
            seconds=float(data["seconds"]),
            sample_hz=float(data.get("sample_hz", DEFAULT_SAMPLE_HZ)),
            upload_interval_s=float(data.get("upload_interval_s", DEFAULT_UPLOAD_INTERVAL_S)),
            max_payload_bytes=None if limit is None else int(limit),
        )


@dataclass
class PublisherReport:
    sample_spacing_ms: int = 0
    pool_samples: int = 0  # per car
    # [car, seq, newest ts, values of each sample, oldest first]
    messages: list[list[int]] = field(default_factory=list)  # acknowledged by the broker
    failed: list[list[int]] = field(default_factory=list)  # published, no PUBACK
    first_publish_ms: int | None = None
    last_publish_ms: int | None = None
    max_payload_bytes: int = 0  # the largest message published
    generate_s: float = 0.0  # wall time to build every car's pool
    connect_s: float = 0.0  # wall time to connect every car
    cpu_s: float = 0.0  # user + system CPU from the first publish to the last PUBACK
    peak_rss_kib: int = 0


def message_samples(record: Sequence[int], spacing_ms: int) -> Iterator[tuple[int, int]]:
    """(ts, number of values) of every sample of a report record, oldest first."""
    _car, _seq, newest_ms, *counts = record
    last = len(counts) - 1
    for position, count in enumerate(counts):
        yield newest_ms - (last - position) * spacing_ms, count


# --------------------------------------------------------------------------- samples


def encode_signals(signals: dict[str, SignalValue]) -> bytes:
    """A ``signals`` object as wire contract v1 wants it: compact UTF-8 JSON, finite numbers
    only (orjson would write NaN as null, which is not a signal value either)."""
    for name, value in signals.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} = {value}: not a JSON number")
    return orjson.dumps(signals)


@dataclass(frozen=True)
class SamplePool:
    """One car's pre-generated samples: each ``signals`` object encoded once (as the tail
    ``,"signals":{...}}`` of a sample object) and how many values it holds."""

    tails: list[bytes]
    counts: list[int]

    def __len__(self) -> int:
        return len(self.tails)

    def cyclic(self, first: int, count: int) -> tuple[list[bytes], list[int]]:
        """``count`` tails and counts from index ``first`` on, wrapping around."""
        size = len(self.tails)
        if first + count <= size:
            return self.tails[first : first + count], self.counts[first : first + count]
        indices = [(first + k) % size for k in range(count)]
        return [self.tails[i] for i in indices], [self.counts[i] for i in indices]


def generate_pool(model: VehicleModel, first_ms: int, spacing_ms: int, size: int) -> SamplePool:
    """Step ``model`` ``size`` times, ``spacing_ms`` apart from ``first_ms``, reading every
    signal each time."""
    tails: list[bytes] = []
    counts: list[int] = []
    # A parked car reads the same values again and again (about 4 samples in 5 of a fleet at a
    # random time of day): one bytes object per distinct reading keeps the pools small.
    seen: dict[bytes, bytes] = {}
    for k in range(size):
        model.step(first_ms + k * spacing_ms)
        signals = model.read_signals()
        tail = b',"signals":' + encode_signals(signals) + b"}"
        tails.append(seen.setdefault(tail, tail))
        counts.append(len(signals))
    return SamplePool(tails, counts)


def payload_parts(
    tails: Sequence[bytes], *, seq: int, newest_ms: int, spacing_ms: int
) -> list[bytes]:
    """``{"seq":N,"samples":[{"ts":T,"signals":{...}},...]}`` as the list of byte strings that
    joined make it: one sample per tail, the newest at ``newest_ms``, the others ``spacing_ms``
    apart before it. Only the digits of ``seq`` and ``ts`` are formatted here."""
    count = len(tails)
    oldest_ms = newest_ms - (count - 1) * spacing_ms
    parts = [b""] * (2 * count + 2)
    parts[0] = b'{"seq":%d,"samples":[' % seq
    # Slice assignments and a C-level map: no Python bytecode per sample on this hot path.
    times = range(oldest_ms, newest_ms + 1, spacing_ms)
    parts[1 : 2 * count : 2] = map(b',{"ts":%d'.__mod__, times)
    parts[1] = parts[1][1:]  # no comma before the first sample
    parts[2 : 2 * count + 1 : 2] = tails
    parts[-1] = b"]}"
    return parts


def assemble_payload(tails: Sequence[bytes], *, seq: int, newest_ms: int, spacing_ms: int) -> bytes:
    """The payload :func:`payload_parts` describes, as one bytes object."""
    return b"".join(payload_parts(tails, seq=seq, newest_ms=newest_ms, spacing_ms=spacing_ms))


def largest_payload(pool: SamplePool, count: int) -> int:
    """Bytes of the largest message of ``count`` samples a car can build from ``pool`` (with a
    19-digit ``seq`` and 13-digit ``ts``, so it is an upper bound)."""
    lengths = [len(t) for t in pool.tails]
    size = len(lengths)
    full, rest = divmod(count, size)
    prefix = list(itertools.accumulate(lengths + lengths, initial=0))
    # The n-th message starts at n * count modulo the pool size: a multiple of their gcd.
    window = max(prefix[s + rest] - prefix[s] for s in range(0, size, math.gcd(count, size)))
    body = full * prefix[size] + window
    return len(b'{"seq":,"samples":[]}') + 19 + count * (len(b',{"ts":') + 13) - 1 + body


# --------------------------------------------------------------------------- the load


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _emit(event: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


@dataclass
class _Car:
    """A car during the run: its connection, its pool and where it is in its sequence."""

    index: int
    connection: Connection[list[int]]
    topic: bytes  # the telemetry topic, as it goes on the wire
    pool: SamplePool
    seq: int = 0
    newest_ms: int = 0


class LoadPublisher:
    def __init__(self, config: PublisherConfig) -> None:
        self.config = config
        self.shape = config.shape
        self.profiles = build_fleet(len(config.passwords), config.seed)
        self.report = PublisherReport(sample_spacing_ms=self.shape.sample_spacing_ms)
        self.pools: list[SamplePool] = []
        self.published = 0

    def generate(self) -> None:
        """Every car's sample pool, from its own model; raises ValueError when a message would
        exceed ``max_payload_bytes``."""
        started = time.perf_counter()
        size = pool_samples(self.shape, len(self.profiles))
        spacing = self.shape.sample_spacing_ms
        # The pool ends now: its samples read the car as it is at this time of day.
        first_ms = _now_ms() - size * spacing
        self.pools = [
            generate_pool(self._model(p, first_ms - 1_000), first_ms, spacing, size)
            for p in self.profiles
        ]
        # The models are garbage now (they hold reference cycles): collect them before the
        # timed phase rather than in it.
        gc.collect()
        self.report.pool_samples = size
        self.report.generate_s = time.perf_counter() - started
        limit = self.config.max_payload_bytes
        if limit is not None and self.pools:
            count = self.shape.samples_per_message
            largest = max(largest_payload(pool, count) for pool in self.pools)
            if largest > limit:
                raise ValueError(
                    f"messages of {count} samples take up to {largest:,} bytes, more than"
                    f" ingest's max_payload_bytes ({limit:,}, FLEETLINK_INGEST_MAX_PAYLOAD_BYTES):"
                    " lower --sample-hz or --upload-interval-s"
                )

    def _model(self, profile: VehicleProfile, start_ms: int) -> VehicleModel:
        return VehicleModel(
            profile, random.Random(f"bench:{self.config.seed}:{profile.vin}"), start_ms
        )

    async def run(self) -> None:
        if len(self.pools) != len(self.profiles):
            self.generate()
        cars = [self._car(i, p) for i, p in enumerate(self.profiles)]
        housekeeping = asyncio.create_task(self._housekeeping(cars))
        try:
            await self._connect(cars)
            _emit(
                {
                    "event": "connected",
                    "cars": len(cars),
                    "pool_samples": self.report.pool_samples,
                    "generate_s": round(self.report.generate_s, 2),
                    "connect_s": round(self.report.connect_s, 2),
                }
            )
            progress = asyncio.create_task(self._progress())
            cpu_at_start = _cpu_s()
            try:
                await self._publish(cars)
                await self._await_acks(cars)
            finally:
                progress.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress
            self.report.cpu_s = _cpu_s() - cpu_at_start
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            for car in cars:
                car.connection.close()
        self.report.peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def _car(self, index: int, profile: VehicleProfile) -> _Car:
        vin = str(profile.vin)
        connection: Connection[list[int]] = Connection(
            vin,
            vin,
            self.config.passwords[index],
            keepalive_s=KEEPALIVE_S,
            on_ack=self.report.messages.append,
            on_lost=self.report.failed.extend,
        )
        return _Car(index, connection, topic_field(telemetry_topic(vin)), self.pools[index])

    async def _connect(self, cars: list[_Car]) -> None:
        started = time.perf_counter()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect(car: _Car) -> None:
            async with gate:
                await car.connection.connect(self.config.host, self.config.port, CONNECT_TIMEOUT_S)

        await asyncio.gather(*(connect(car) for car in cars))
        self.report.connect_s = time.perf_counter() - started

    async def _publish(self, cars: list[_Car]) -> None:
        """Every car publishes once per upload interval, the first time at a random offset into
        the first interval; one loop over a heap of due times (cheaper than a task per car)."""
        loop = asyncio.get_running_loop()
        interval = self.shape.upload_interval_s
        start = loop.time()
        end = start + self.config.seconds
        rng = random.Random(self.config.seed)
        due = [(start + rng.uniform(0, interval), car.index) for car in cars]
        heapq.heapify(due)
        while due and due[0][0] < end:
            now = loop.time()
            if due[0][0] > now:
                # Whatever falls due meanwhile goes out in the same wake-up: at thousands of
                # messages a second a wake-up per message costs more than the messages.
                await asyncio.sleep(max(due[0][0] - now, TICK_S))
                now = loop.time()
            while due and due[0][0] <= now and due[0][0] < end:
                when, index = due[0]
                self._publish_one(cars[index])
                # On schedule, but never two messages of one car less than an interval apart.
                heapq.heapreplace(due, (max(when, now) + interval, index))

    def _publish_one(self, car: _Car) -> None:
        shape = self.shape
        count = shape.samples_per_message
        # The newest sample is "now"; a car never reuses a sample time (PK is vin, ts).
        car.newest_ms = max(_now_ms(), car.newest_ms + shape.upload_interval_ms)
        tails, counts = car.pool.cyclic((car.seq * count) % len(car.pool), count)
        car.seq += 1
        parts = payload_parts(
            tails, seq=car.seq, newest_ms=car.newest_ms, spacing_ms=shape.sample_spacing_ms
        )
        size = sum(map(len, parts))
        record = [car.index, car.seq, car.newest_ms, *counts]
        if not car.connection.publish(car.topic, parts, size, record):
            self.report.failed.append(record)
        self.published += 1
        report = self.report
        report.last_publish_ms = _now_ms()
        if report.first_publish_ms is None:
            report.first_publish_ms = report.last_publish_ms
        report.max_payload_bytes = max(report.max_payload_bytes, size)

    async def _await_acks(self, cars: list[_Car]) -> None:
        """Wait for the outstanding PUBACKs; whatever has none after PUBLISH_TIMEOUT_S failed
        (closing the connection reports it as such)."""
        deadline = asyncio.get_running_loop().time() + PUBLISH_TIMEOUT_S
        while any(car.connection.pending for car in cars):
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.05)

    async def _housekeeping(self, cars: list[_Car]) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)
            for car in cars:
                car.connection.ping_if_idle()

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
    try:
        publisher.generate()
    except ValueError as exc:
        print(f"bench.publisher: {exc}", file=sys.stderr)
        return 1
    asyncio.run(publisher.run())
    Path(args[1]).write_text(json.dumps(asdict(publisher.report)))
    _emit({"event": "done", "published": publisher.published})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
