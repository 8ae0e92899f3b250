"""Bad input through a live worker: every bad payload is dead-lettered with the right reason,
the good messages around it are stored, and the worker keeps running. The validator itself is
fuzzed with hypothesis in test_validation.py; here a seeded mutation corpus goes over the wire."""

from __future__ import annotations

import asyncio
import json
import random
import time

import aiomqtt
import asyncpg

from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from ingest.store import TelemetryStore
from protocol.topics import telemetry_topic

VIN = "WVWZZZ1JZXW000001"
DAY_MS = 86_400_000


def good(seq: int, ts: int) -> bytes:
    return json.dumps(
        {"seq": seq, "samples": [{"ts": ts, "signals": {"Vehicle.Speed": 50.0}}]}
    ).encode()


def corpus(now: int) -> list[tuple[bytes, set[str]]]:
    """(payload, the reasons its dead letters must carry)."""
    sample = {"ts": now, "signals": {"Vehicle.Speed": 1.0}}
    return [
        (good(1, now)[:-7], {"malformed_json"}),  # truncated
        (b'{"seq": "one", "samples": []}', {"invalid_envelope"}),  # wrong types
        (json.dumps({"seq": 1, "samples": [sample] * 3601}).encode(), {"invalid_envelope"}),
        (b"[" * 5000 + b"]" * 5000, {"malformed_json"}),  # deep nesting
        (
            b'{"seq": 1, "samples": [{"ts": %d, "signals": {"Vehicle.Speed": NaN}}]}' % now,
            {"non_finite_value"},
        ),
        (good(1, now - 10 * 365 * DAY_MS), {"timestamp_too_old"}),
        (good(1, now + DAY_MS), {"timestamp_in_future"}),
        (b"\x00" * (10 * 1024 * 1024), {"payload_too_large"}),  # 10 MB
        (b'{"seq": 1, "samples": [{"ts": 1, "signals": {"a": "\xff\xfe"}}]}', {"invalid_encoding"}),
        (
            json.dumps(
                {"seq": 1, "samples": [{"ts": now, "signals": {"Vehicle.OEM.X": "a\x00"}}]}
            ).encode(),
            {"invalid_text"},
        ),
    ]


def mutations(seed: int, now: int, count: int) -> list[bytes]:
    """Byte flips, truncations and splices of a good message: anything may come out."""
    rng = random.Random(seed)
    base = json.dumps(
        {
            "seq": 7,
            "samples": [
                {
                    "ts": now,
                    "signals": {
                        "Vehicle.Speed": 42.0,
                        "Vehicle.IsMoving": True,
                        "Vehicle.OEM.Label": "x",
                    },
                }
            ],
        }
    ).encode()
    out = []
    for _ in range(count):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            i = rng.randrange(len(data))
            if op < 0.5:
                data[i] = rng.randrange(256)
            elif op < 0.75:
                del data[i : i + rng.randint(1, 8)]
            else:
                data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        out.append(bytes(data))
    return out


async def publish_with_neighbours(
    car: aiomqtt.Client, payloads: list[bytes], first_ts: int, first_seq: int
) -> list[int]:
    """Each bad payload followed by a good message; returns the good messages' sample times."""
    good_ts = []
    for i, payload in enumerate(payloads):
        await car.publish(telemetry_topic(VIN), payload, qos=1)
        good_ts.append(first_ts + i)
        await car.publish(telemetry_topic(VIN), good(first_seq + i, first_ts + i), qos=1)
    return good_ts


async def until_processed(worker: IngestWorker, task: asyncio.Task[None], messages: int) -> None:
    deadline = time.monotonic() + 60
    while worker.stats.messages < messages:
        assert not task.done(), "the worker died"
        assert time.monotonic() < deadline, "not all messages processed"
        await asyncio.sleep(0.05)


async def test_bad_payloads_are_set_aside_and_neighbours_stored(
    amqtt_broker,
    pool: asyncpg.Pool,
    test_vehicles,
) -> None:
    worker = IngestWorker(
        TelemetryStore(pool), amqtt_broker.ingest_endpoint, IngestSettings(flush_interval_ms=50)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.subscribed.wait(), 15)
    now = time.time_ns() // 1_000_000
    cases = corpus(now)
    fuzz = mutations(seed=11, now=now, count=200)
    try:
        async with aiomqtt.Client(
            amqtt_broker.host,
            amqtt_broker.port,
            identifier=VIN,
            username=VIN,
            password=test_vehicles.passwords[VIN],
        ) as car:
            good_ts = await publish_with_neighbours(car, [p for p, _ in cases], now - 60_000, 100)
            await until_processed(worker, task, 2 * len(cases))
            # The hand-written corpus: one dead letter each, in order, with the expected reason.
            letters = await pool.fetch(
                "SELECT reason, length(payload) AS size FROM dead_letters ORDER BY id"
            )
            assert [{r["reason"]} for r in letters] == [expected for _, expected in cases]
            assert all(r["size"] <= 2000 for r in letters)  # truncated: no 10 MB stored
            # Then the fuzz: whatever each mutation is, the worker survives it.
            good_ts += await publish_with_neighbours(car, fuzz, now - 30_000, 1_000)
            await until_processed(worker, task, 2 * (len(cases) + len(fuzz)))
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    stored = {
        r["ts"]
        for r in await pool.fetch(
            "SELECT (extract(epoch FROM ts) * 1000)::bigint AS ts FROM telemetry_values"
            " WHERE vin = $1 AND signal = 'Vehicle.Speed' AND value = 50.0",
            VIN,
        )
    }
    assert set(good_ts) <= stored  # every good neighbour is there
    assert sum(worker.stats.rejects.values()) >= len(cases)
