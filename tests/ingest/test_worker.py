"""IngestWorker through a real broker (amqtt and Mosquitto) into a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiomqtt
import asyncpg
import pytest

from ingest.consumer import IngestWorker
from ingest.errors import StoreDataError, StoreUnavailableError
from ingest.settings import IngestSettings
from ingest.store import Batch, TelemetryStore
from protocol.topics import telemetry_topic

VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def telemetry(seq: int, *samples: tuple[int, dict[str, object]]) -> bytes:
    return json.dumps(
        {"seq": seq, "samples": [{"ts": ts, "signals": s} for ts, s in samples]}
    ).encode()


async def wait_for(condition: Callable[[], object], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await condition():  # type: ignore[misc]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s} s")


@asynccontextmanager
async def running(worker: IngestWorker) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.subscribed.wait(), 15)
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


@asynccontextmanager
async def vehicle(broker, vin: str, password: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=vin, username=vin, password=password
    ) as client:
        yield client


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker(request: pytest.FixtureRequest):
    if request.param == "amqtt":
        return request.getfixturevalue("amqtt_broker")
    return request.getfixturevalue("mosquitto").broker


def settings(**overrides: object) -> IngestSettings:
    return IngestSettings(flush_interval_ms=50, **overrides)  # type: ignore[arg-type]


async def test_good_samples_stored_bad_ones_dead_lettered(
    broker,
    pool: asyncpg.Pool,
    test_vehicles,
) -> None:
    worker = IngestWorker(TelemetryStore(pool), broker.ingest_endpoint, settings())
    t = now_ms()
    async with running(worker), vehicle(broker, VIN_A, test_vehicles.passwords[VIN_A]) as car:
        await car.publish(
            telemetry_topic(VIN_A),
            telemetry(
                1,
                (t - 2000, {"Vehicle.Speed": 50.0, "Vehicle.TraveledDistance": 100.0}),
                (t - 1000, {"Vehicle.Speed": 9999.0, "Vehicle.OEM.Extra": 7}),
            ),
            qos=1,
        )
        await car.publish(telemetry_topic(VIN_A), b'{"seq": 2, "samples": [', qos=1)
        await car.publish(telemetry_topic(VIN_A), b"\xff" * 10, qos=1)
        await car.publish(telemetry_topic(VIN_A), telemetry(3, (t, {"Vehicle.Speed": 51.0})), qos=1)

        async def settled() -> bool:
            return await pool.fetchval("SELECT count(*) FROM dead_letters") == 3 and (
                await pool.fetchval("SELECT count(*) FROM telemetry_values") == 4
            )

        await wait_for(settled)
    reasons = await pool.fetch("SELECT reason FROM dead_letters ORDER BY id")
    assert [r["reason"] for r in reasons] == ["out_of_range", "malformed_json", "invalid_encoding"]
    speed = await pool.fetchval(
        "SELECT value FROM vehicle_state WHERE vin = $1 AND signal = 'Vehicle.Speed'", VIN_A
    )
    assert speed == 51.0
    assert worker.stats.rejects == {"out_of_range": 1, "malformed_json": 1, "invalid_encoding": 1}
    assert worker.stats.messages == 4


async def test_a_vehicle_cannot_write_under_another_vin(
    broker,
    pool: asyncpg.Pool,
    test_vehicles,
) -> None:
    worker = IngestWorker(TelemetryStore(pool), broker.ingest_endpoint, settings())
    t = now_ms()
    async with running(worker), vehicle(broker, VIN_A, test_vehicles.passwords[VIN_A]) as car:
        await car.publish(telemetry_topic(VIN_B), telemetry(1, (t, {"Vehicle.Speed": 1.0})), qos=1)
        await car.publish(telemetry_topic(VIN_A), telemetry(2, (t, {"Vehicle.Speed": 2.0})), qos=1)
        await wait_for(lambda: pool.fetchval("SELECT count(*) FROM telemetry_values"))
        await asyncio.sleep(0.3)  # give a wrongly routed message time to arrive, too
    rows = await pool.fetch("SELECT vin, value FROM telemetry_values")
    assert [(r["vin"], r["value"]) for r in rows] == [(VIN_A, 2.0)]


class FlakyStore:
    """Fails the first ``failures`` writes, as a database that is down would."""

    def __init__(self, inner: TelemetryStore, failures: int) -> None:
        self._inner = inner
        self.failures = failures
        self.attempts = 0

    async def ensure_partitions(self, from_ms: int, to_ms: int) -> None:
        await self._inner.ensure_partitions(from_ms, to_ms)

    async def apply_retention(self, *, retention_days: int, now_ms: int) -> list[str]:
        return await self._inner.apply_retention(retention_days=retention_days, now_ms=now_ms)

    async def write(self, batch: Batch) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StoreUnavailableError("database down (test)")
        await self._inner.write(batch)


async def test_store_outage_is_retried_without_loss(
    amqtt_broker,
    pool: asyncpg.Pool,
    test_vehicles,
) -> None:
    store = FlakyStore(TelemetryStore(pool), failures=3)
    worker = IngestWorker(
        store,
        amqtt_broker.ingest_endpoint,  # type: ignore[arg-type]
        settings(retry_max_backoff_ms=200),
    )
    t = now_ms()
    async with running(worker), vehicle(amqtt_broker, VIN_A, test_vehicles.passwords[VIN_A]) as car:
        for seq in range(5):
            await car.publish(
                telemetry_topic(VIN_A),
                telemetry(seq, (t - 5000 + seq, {"Vehicle.Speed": float(seq)})),
                qos=1,
            )
        await wait_for(lambda: _count_is(pool, 5))
    assert store.attempts > 3
    assert worker.stats.commit_failures == 3


async def _count_is(pool: asyncpg.Pool, expected: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM telemetry_values") == expected


class BlockedStore(FlakyStore):
    """Never commits: the worker holds its messages unacknowledged."""

    async def write(self, batch: Batch) -> None:
        self.attempts += 1
        raise StoreUnavailableError("database down (test)")


async def test_unacknowledged_messages_are_redelivered_after_a_worker_restart(
    mosquitto,
    pool: asyncpg.Pool,
    test_vehicles,
) -> None:
    """Ack only after commit: a worker that stops before committing loses nothing, because the
    broker redelivers to the persistent session of the next worker with the same client id."""
    broker = mosquitto.broker
    blocked = BlockedStore(TelemetryStore(pool), failures=0)
    first = IngestWorker(
        blocked,
        broker.ingest_endpoint,  # type: ignore[arg-type]
        settings(client_id="ingest-restart"),
    )
    t = now_ms()
    async with running(first), vehicle(broker, VIN_A, test_vehicles.passwords[VIN_A]) as car:
        for seq in range(20):
            await car.publish(
                telemetry_topic(VIN_A),
                telemetry(seq, (t - 20_000 + seq, {"Vehicle.Speed": float(seq)})),
                qos=1,
            )
        await wait_for(lambda: _attempted(blocked))
    assert await pool.fetchval("SELECT count(*) FROM telemetry_values") == 0

    second = IngestWorker(
        TelemetryStore(pool), broker.ingest_endpoint, settings(client_id="ingest-restart")
    )
    async with running(second):
        await wait_for(lambda: _count_is(pool, 20))
    assert await pool.fetchval("SELECT count(DISTINCT ts) FROM telemetry_values") == 20


async def _attempted(store: FlakyStore) -> bool:
    return store.attempts > 0


def _mqtt_string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


async def connect_raw_with_will(
    host: str, port: int, vin: str, password: str, will_topic: str, will: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare MQTT 3.1.1 CONNECT with a retained QoS 1 will (section 3.1): a car we can make
    vanish without a DISCONNECT, which no client library lets us do cleanly."""
    flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04  # user, password, will retain, will QoS 1, will
    body = (
        _mqtt_string(b"MQTT")
        + bytes([4, flags])
        + (60).to_bytes(2, "big")
        + _mqtt_string(vin.encode())
        + _mqtt_string(will_topic.encode())
        + _mqtt_string(will)
        + _mqtt_string(vin.encode())
        + _mqtt_string(password.encode())
    )
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(bytes([0x10, len(body)]) + body)  # body < 128 bytes: one length byte
    connack = await reader.readexactly(4)
    assert connack[3] == 0, f"CONNACK refused: {connack[3]}"
    return reader, writer


async def test_presence_online_then_last_will_offline(
    broker,
    pool: asyncpg.Pool,
    test_vehicles,
) -> None:
    worker = IngestWorker(TelemetryStore(pool), broker.ingest_endpoint, settings())
    presence_topic = f"v1/vehicles/{VIN_A}/presence"
    async with running(worker):
        _, car = await connect_raw_with_will(
            broker.host,
            broker.port,
            VIN_A,
            test_vehicles.passwords[VIN_A],
            presence_topic,
            b'{"state": "offline"}',
        )
        # The car announces itself the way the simulator does.
        body = json.dumps({"state": "online", "ts": now_ms()}).encode()
        publish = _mqtt_string(presence_topic.encode()) + (1).to_bytes(2, "big") + body
        car.write(bytes([0x33, len(publish)]) + publish)  # PUBLISH, QoS 1, retain
        await car.drain()

        async def online() -> bool:
            return (
                await pool.fetchval("SELECT online FROM vehicle_presence WHERE vin = $1", VIN_A)
                is True
            )

        await wait_for(online)
        car.close()  # the car vanishes without DISCONNECT: the broker publishes its will

        async def offline() -> bool:
            return (
                await pool.fetchval("SELECT online FROM vehicle_presence WHERE vin = $1", VIN_A)
                is False
            )

        await wait_for(offline)
    row = await pool.fetchrow("SELECT * FROM vehicle_presence WHERE vin = $1", VIN_A)
    assert row["last_connected_at"] is not None
    assert row["last_disconnected_at"] >= row["last_connected_at"]


class RefusingStore(FlakyStore):
    """A database that refuses any batch holding the signal POISON (as it would refuse data
    that validation let through), and stores everything else."""

    async def write(self, batch: Batch) -> None:
        self.attempts += 1
        if any(row[1] == "Vehicle.OEM.Poison" for row in batch.tail_rows()):
            raise StoreDataError("invalid byte sequence (test)")
        await self._inner.write(batch)


async def test_a_message_the_database_refuses_is_set_aside_and_the_rest_stored(
    amqtt_broker,
    pool: asyncpg.Pool,
    test_vehicles,
) -> None:
    store = RefusingStore(TelemetryStore(pool), failures=0)
    worker = IngestWorker(
        store,  # type: ignore[arg-type]  # a fake with the store's interface
        amqtt_broker.ingest_endpoint,
        IngestSettings(flush_interval_ms=300),
    )
    t = now_ms()
    async with running(worker), vehicle(amqtt_broker, VIN_A, test_vehicles.passwords[VIN_A]) as car:
        for seq in range(6):
            signals: dict[str, object] = {"Vehicle.Speed": float(seq)}
            if seq == 3:
                signals["Vehicle.OEM.Poison"] = 1
            await car.publish(
                telemetry_topic(VIN_A), telemetry(seq, (t - 10_000 + seq, signals)), qos=1
            )

        async def settled() -> bool:
            return await pool.fetchval("SELECT count(*) FROM dead_letters") == 1 and (
                await pool.fetchval("SELECT count(*) FROM telemetry_values") == 5
            )

        await wait_for(settled)
        # The worker is not stuck: later messages keep flowing.
        await car.publish(telemetry_topic(VIN_A), telemetry(9, (t, {"Vehicle.Speed": 9.0})), qos=1)
        await wait_for(lambda: _count_is(pool, 6))
    assert await pool.fetchval("SELECT reason FROM dead_letters") == "unstorable"
    assert worker.stats.rejects == {"unstorable": 1}
    assert worker.stats.messages == 7
