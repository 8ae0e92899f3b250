"""The simulated car on the wire: store-and-forward, seq, presence, against a real broker."""

from __future__ import annotations

import asyncio
import json
import time

import aiomqtt

from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker
from broker.policy import ServiceIdentity, ServiceRole
from fleetlink.embedded_postgres import free_port
from protocol.clock import SYSTEM_CLOCK
from protocol.endpoint import MqttEndpoint
from protocol.vin import Vin
from simulator.car import CarLink

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
