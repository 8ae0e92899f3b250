"""Store-and-forward catch-up: an hour of samples recorded offline reaches the store whole."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg

from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from ingest.store import TelemetryStore
from protocol.clock import SYSTEM_CLOCK
from protocol.endpoint import MqttEndpoint
from simulator.car import DEFAULT_MAX_PAYLOAD_BYTES, CarLink
from simulator.fleet import build_fleet
from simulator.vehicle_model import VehicleModel

HOUR = 3600


def offline_hour(link: CarLink, seed: int = 3) -> int:
    """Fill the car's buffer with an hour at 1 Hz; returns the number of values."""
    profile = build_fleet(1, seed)[0]
    start = time.time_ns() // 1_000_000 - HOUR * 1000
    model = VehicleModel(profile, random.Random(seed), start)
    values = 0
    for i in range(HOUR):
        model.step(start + i * 1000)
        signals = model.read_signals()
        values += len(signals)
        link.offer(start + i * 1000, signals)
    return values


def test_a_backlog_is_cut_into_messages_the_backend_accepts() -> None:
    profile = build_fleet(1, 3)[0]
    link = CarLink(profile.vin, "x", MqttEndpoint("127.0.0.1", 1), SYSTEM_CLOCK)
    offline_hour(link)
    sizes, counts = [], []
    while link.backlog:
        samples, payload = link._next_batch()
        sizes.append(len(payload))
        counts.append(len(samples))
        for _ in samples:
            link._buffer.popleft()
    assert sum(counts) == HOUR and len(counts) > 10
    assert max(sizes) <= DEFAULT_MAX_PAYLOAD_BYTES


async def test_an_offline_hour_is_stored_completely(
    amqtt_broker,
    pool: asyncpg.Pool,
    test_vehicles,
) -> None:
    profile = build_fleet(1, 3)[0]
    test_vehicles.passwords[profile.vin] = "hour-offline"
    link = CarLink(
        profile.vin, "hour-offline", amqtt_broker.endpoint(), SYSTEM_CLOCK, publish_interval_s=0.2
    )
    values = offline_hour(link)
    worker = IngestWorker(
        TelemetryStore(pool), amqtt_broker.ingest_endpoint, IngestSettings(flush_interval_ms=50)
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop))]
    await asyncio.wait_for(worker.subscribed.wait(), 15)
    tasks.append(asyncio.create_task(link.run(stop)))
    try:
        deadline = time.monotonic() + 60
        while await pool.fetchval("SELECT count(*) FROM telemetry_values") < values:
            assert time.monotonic() < deadline, "backlog not stored in time"
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert worker.stats.rejects == {}
    assert await pool.fetchval("SELECT count(DISTINCT ts) FROM telemetry_values") == HOUR
