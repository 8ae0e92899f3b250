"""The simulated car on the wire: store-and-forward, seq, presence, against a real broker."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable

import aiomqtt
import asyncpg
import pytest

from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker
from broker.policy import ServiceIdentity, ServiceRole
from fleetlink.embedded_postgres import free_port
from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from ingest.store import TelemetryStore
from protocol.clock import SYSTEM_CLOCK
from protocol.endpoint import MqttEndpoint
from protocol.messages import Sample, SignalValue, TelemetryMessage, encode
from protocol.vin import Vin
from simulator.car import CarLink, NotConnectedError, encode_sample
from simulator.pacing import Backoff, ConnectPacer

VIN = Vin("WVWZZZ1JZXW000001")


async def test_samples_taken_offline_are_all_delivered_in_order(test_vehicles) -> None:
    port = free_port()
    services = ServiceAccounts(
        {"svc": ("pw", ServiceIdentity("svc", frozenset({ServiceRole.INGEST})))}
    )
    broker = EmbeddedBroker(FirstMatch([services, test_vehicles]), port=port)
    link = CarLink(
        VIN,
        test_vehicles.passwords[VIN],
        MqttEndpoint("127.0.0.1", port),
        SYSTEM_CLOCK,
        publish_interval_s=0.2,
    )
    t0 = time.time_ns() // 1_000_000
    # The broker is not there yet: the car records 600 samples (10 minutes at 1 Hz) offline.
    for i in range(600):
        link.offer(t0 - 600_000 + i * 1000, {"Vehicle.Speed": float(i % 100)})
    stop = asyncio.Event()
    task = asyncio.create_task(link.run(stop))
    await asyncio.sleep(1.0)
    assert not link.connected and link.backlog == 600

    await broker.start()
    received: list[dict[str, object]] = []
    presence: list[str] = []
    try:
        async with aiomqtt.Client(
            "127.0.0.1", port, identifier="svc", username="svc", password="pw"
        ) as listener:
            await listener.subscribe(f"v1/vehicles/{VIN}/telemetry", qos=1)
            await listener.subscribe(f"v1/vehicles/{VIN}/presence", qos=1)

            async def collect() -> None:
                async for message in listener.messages:
                    body = json.loads(message.payload)  # type: ignore[arg-type]
                    if message.topic.value.endswith("presence"):
                        presence.append(body["state"])
                    else:
                        received.append(body)

            collector = asyncio.create_task(collect())
            deadline = time.monotonic() + 60  # reconnect backoff is jittered, up to a few s
            while sum(len(m["samples"]) for m in received) < 600:  # type: ignore[arg-type]
                assert time.monotonic() < deadline, "backlog not delivered"
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.wait_for(task, 10)
            await asyncio.sleep(0.3)
            collector.cancel()
    finally:
        await broker.stop()

    timestamps = [s["ts"] for m in received for s in m["samples"]]  # type: ignore[attr-defined]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == 600
    seqs = [m["seq"] for m in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert link.backlog == 0 and link.counters.published_samples == 600
    assert presence[0] == "online" and presence[-1] == "offline"


def test_a_full_buffer_drops_the_oldest_and_counts_it() -> None:
    link = CarLink(VIN, "x", MqttEndpoint("127.0.0.1", 1), SYSTEM_CLOCK, buffer_max_samples=3)
    for i in range(5):
        link.offer(i, {"Vehicle.Speed": float(i)})
    assert link.backlog == 3
    assert link.counters.dropped_samples == 2


def test_a_full_buffer_by_bytes_drops_the_oldest_and_counts_it() -> None:
    sample = encode_sample(0, {"Vehicle.Speed": 1.0})
    link = CarLink(
        VIN, "x", MqttEndpoint("127.0.0.1", 1), SYSTEM_CLOCK, buffer_max_bytes=3 * len(sample)
    )
    for i in range(10):
        link.offer(i, {"Vehicle.Speed": 1.0})
    assert link.backlog == 3 and link.backlog_bytes == 3 * len(sample)
    assert link.counters.dropped_samples == 7
    assert [json.loads(s)["ts"] for s in link._buffer] == [7, 8, 9]  # the newest stay


def test_a_message_is_the_encoded_samples_joined_exactly_as_the_model_encodes_it() -> None:
    link = CarLink(VIN, "x", MqttEndpoint("127.0.0.1", 1), SYSTEM_CLOCK, last_seq=41)
    signals: list[dict[str, SignalValue]] = [
        {"Vehicle.Speed": 52.5, "Vehicle.IsMoving": True, "Vehicle.Cabin.Door": "open"},
        {"Vehicle.Speed": 0, "Vehicle.TraveledDistance": 12345.6},
    ]
    for i, sample in enumerate(signals):
        link.offer(1_763_892_000_000 + i, sample)
    samples, payload = link._next_batch()
    expected = TelemetryMessage(
        seq=42,
        samples=[Sample(ts=1_763_892_000_000 + i, signals=s) for i, s in enumerate(signals)],
    )
    assert len(samples) == 2 and payload == encode(expected)
    assert TelemetryMessage.model_validate_json(payload) == expected


def test_reconnect_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    backoff = Backoff(random.Random(3), initial_s=1.0, cap_s=60.0)
    ceilings, delays = [], []
    for _ in range(12):
        ceilings.append(backoff.ceiling_s())
        delays.append(backoff.next_delay_s())
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    # Across many cars the delays spread over the whole window (full jitter, not +-10%).
    spread = [Backoff(random.Random(i)).next_delay_s() for i in range(2000)]
    assert min(spread) < 0.05 and max(spread) > 0.95
    backoff.reset()
    assert backoff.ceiling_s() == 1.0


async def test_the_connect_pacer_spaces_connects_at_its_rate() -> None:
    clock = [100.0]
    pacer = ConnectPacer(200.0, monotonic=lambda: clock[0])
    waits = [pacer.reserve() for _ in range(400)]
    assert waits[0] == 0.0 and waits[-1] == pytest.approx(399 / 200)
    clock[0] += 10.0  # idle for a while: no burst credit is saved up
    assert pacer.reserve() == 0.0 and pacer.reserve() == pytest.approx(1 / 200)


async def test_losing_coverage_cuts_the_link_the_will_fires_and_ten_minutes_arrive_whole(
    amqtt_broker, pool: asyncpg.Pool, test_vehicles
) -> None:
    """Online, then 10 simulated minutes without coverage (sampled at 1 Hz), then back: every
    sample reaches the database, and the broker told the backend the car was gone."""
    worker = IngestWorker(
        TelemetryStore(pool), amqtt_broker.ingest_endpoint, IngestSettings(flush_interval_ms=50)
    )
    stop = asyncio.Event()
    ingest = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.subscribed.wait(), 15)
    link = CarLink(
        VIN,
        test_vehicles.passwords[VIN],
        amqtt_broker.endpoint(),
        SYSTEM_CLOCK,
        publish_interval_s=0.2,
    )
    presence: list[str] = []
    link_stop = asyncio.Event()
    t0 = time.time_ns() // 1_000_000 - 900_000
    async with aiomqtt.Client(
        amqtt_broker.host,
        amqtt_broker.port,
        identifier="svc-watch",
        username=amqtt_broker.ingest_endpoint.username,
        password=amqtt_broker.ingest_endpoint.password,
    ) as watcher:
        await watcher.subscribe(f"v1/vehicles/{VIN}/presence", qos=1)

        async def watch() -> None:
            async for message in watcher.messages:
                presence.append(json.loads(message.payload)["state"])  # type: ignore[arg-type]

        watching = asyncio.create_task(watch())
        task = asyncio.create_task(link.run(link_stop))
        try:
            for i in range(60):  # a minute online
                link.offer(t0 + i * 1000, {"Vehicle.Speed": float(i)})
            await _until(lambda: link.backlog == 0 and link.connected, 30)
            link.set_radio(False)
            await _until(lambda: not link.connected and "offline" in presence, 15)
            for i in range(60, 660):  # ten minutes in a tunnel
                link.offer(t0 + i * 1000, {"Vehicle.Speed": float(i % 100)})
            await asyncio.sleep(0.5)
            assert not link.connected and link.backlog == 600  # no reconnect without coverage
            link.set_radio(True)
            await _until(lambda: link.backlog == 0, 30)
            query = "SELECT count(*) FROM (SELECT DISTINCT vin, ts FROM telemetry WHERE vin = $1) s"
            await _until_async(lambda: _count(pool, query, VIN, 660), 30)
        finally:
            link_stop.set()
            await asyncio.wait_for(task, 20)
            watching.cancel()
            stop.set()
            await asyncio.wait_for(ingest, 30)
    assert link.counters.connection_losses == 1 and link.counters.connects == 2
    assert link.counters.published_samples == 660 and link.counters.dropped_samples == 0
    assert presence[:3] == ["online", "offline", "online"]  # the last will, then back
    assert worker.stats.rejects == {}


async def _count(pool: asyncpg.Pool, query: str, vin: str, expected: int) -> bool:
    return int(await pool.fetchval(query, vin)) >= expected


async def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _until_async(condition: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


class _LosesFirstPuback:
    """Stands in for the MQTT client: the first publish fails as a connection lost before its
    PUBACK would; later ones succeed and are recorded."""

    def __init__(self) -> None:
        self.attempts = 0
        self.published: list[bytes] = []

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.attempts += 1
        if self.attempts == 1:
            raise aiomqtt.MqttError("connection lost before the PUBACK")
        self.published.append(payload)


async def test_an_event_resent_after_a_lost_puback_keeps_its_seq() -> None:
    link = CarLink(VIN, "x", MqttEndpoint("127.0.0.1", 1), SYSTEM_CLOCK, last_seq=9)
    link.offer_event(1_763_892_000_000, "dtc", code="P0217", active=True)
    client = _LosesFirstPuback()
    with pytest.raises(aiomqtt.MqttError):
        await link._flush(client)  # type: ignore[arg-type]
    await link._flush(client)  # type: ignore[arg-type]
    assert [json.loads(p)["seq"] for p in client.published] == [10]
    assert link.seq == 10  # the retry took no new number


async def test_an_ota_report_from_a_car_without_a_connection_fails_within_its_timeout() -> None:
    # Reports are not buffered (each carries a nonce the director checks): an offline car
    # says so, in bounded time, and its OTA client reports afresh later.
    link = CarLink(VIN, "x", MqttEndpoint("127.0.0.1", 1), SYSTEM_CLOCK)
    started = time.monotonic()
    with pytest.raises(NotConnectedError, match="offline"):
        await link.publish_ota_status(b"{}", timeout_s=0.2)
    assert 0.2 <= time.monotonic() - started < 2.0
