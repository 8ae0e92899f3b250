"""Two ingest workers on one MQTT 5 shared subscription (``$share/ingest/...``) on Mosquitto:
every sample stored exactly once, and both workers carry part of the load.

Mosquitto's ``use_username_as_clientid`` makes the client id the username, so each worker has
a service account of its own (two workers under one name would take each other's session)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import pytest

from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from ingest.store import TelemetryStore
from protocol.endpoint import MqttEndpoint

from .conftest import (
    LoadFleet,
    MosquittoFactory,
    audit,
    fleet_vins,
    vehicle_passwords,
    wait_all_stored,
)

pytestmark = [pytest.mark.integration, pytest.mark.mosquitto]

SERVICES = {"svc-ingest-a": "shared-secret-a", "svc-ingest-b": "shared-secret-b"}
LOAD_SECONDS = 15


async def test_two_workers_on_a_shared_subscription_store_every_sample_exactly_once(
    mosquitto_factory: MosquittoFactory, pool: asyncpg.Pool
) -> None:
    started = time.monotonic()
    passwords = vehicle_passwords(fleet_vins())
    broker = mosquitto_factory(SERVICES, passwords)
    workers = {
        name: IngestWorker(
            TelemetryStore(pool),
            MqttEndpoint("127.0.0.1", broker.port, username=name, password=secret),
            IngestSettings(client_id=name, share_group="ingest", mqtt_version="5"),
        )
        for name, secret in SERVICES.items()
    }
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers.values()]
    fleet = LoadFleet(broker.port, passwords, seconds=LOAD_SECONDS)
    try:
        for worker in workers.values():
            await asyncio.wait_for(worker.subscribed.wait(), 15)
        await asyncio.wait_for(fleet.run(), LOAD_SECONDS + 30)
        await wait_all_stored(pool, fleet, 30)
        await asyncio.sleep(1.0)  # a message delivered to both would land by now
        outcome = await audit(pool, fleet)
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
        broker.stop()

    per_worker = {name: w.stats.messages for name, w in workers.items()}
    print(
        f"\n[shared subscription] {outcome.figures()}; messages per worker {per_worker};"
        f" batches per worker { {n: w.stats.batches for n, w in workers.items()} };"
        f" car resends {fleet.resends}; runtime {time.monotonic() - started:.1f} s"
    )
    assert outcome.lost == 0, outcome.figures()
    assert outcome.unexpected == 0, outcome.figures()
    assert outcome.duplicate_rows == 0, outcome.figures()
    assert outcome.duplicate_messages == 0, outcome.figures()
    assert outcome.dead_letters == 0, outcome.figures()
    # Each message went to exactly one worker of the group, and both did a fair part.
    assert sum(per_worker.values()) == outcome.messages_sent, per_worker
    for name, count in per_worker.items():
        assert count >= outcome.messages_sent // 4, (name, per_worker)
    assert all(task.done() and task.exception() is None for task in tasks)
