"""kill -9 an ingest worker in the middle of a load, start it again: nothing lost, nothing twice.

The worker is a real ``fleetlink serve ingest`` process on a persistent MQTT session; the broker
keeps what the dead worker had not acknowledged (and what arrives while it is dead) and hands it
to the restarted worker, which has the same client id (= username on Mosquitto).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncpg
import pytest

from fleetlink.embedded_postgres import free_port

from .conftest import (
    LoadFleet,
    MosquittoFactory,
    WorkerProcess,
    audit,
    fleet_vins,
    stored_rows,
    vehicle_passwords,
    wait_all_stored,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.mosquitto]

SERVICE = "svc-ingest-kill"
SERVICE_PASSWORD = "kill-test-secret"
LOAD_SECONDS = 16
DEAD_SECONDS = 2.0
# The first worker batches for 1 s, so that between two commits it holds messages it has
# received but not acknowledged, and the kill below can be timed to land in such a window.
FIRST_FLUSH_INTERVAL_MS = 1000


async def test_kill_9_mid_load_then_restart_loses_nothing_and_stores_nothing_twice(
    mosquitto_factory: MosquittoFactory,
    database_url: str,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    passwords = vehicle_passwords(fleet_vins())
    broker = mosquitto_factory({SERVICE: SERVICE_PASSWORD}, passwords, debug_log=True)
    env = {
        **os.environ,
        "FLEETLINK_DATABASE_URL": database_url,
        "FLEETLINK_MQTT_URL": broker.url(SERVICE, SERVICE_PASSWORD),
        "FLEETLINK_INGEST_CLIENT_ID": SERVICE,  # the broker forces it anyway (username)
        "FLEETLINK_INGEST_MQTT_VERSION": "3.1.1",
        "FLEETLINK_LOG_LEVEL": "INFO",
    }
    first = WorkerProcess(
        {
            **env,
            "FLEETLINK_INGEST_METRICS_PORT": str(port := free_port()),
            "FLEETLINK_INGEST_FLUSH_INTERVAL_MS": str(FIRST_FLUSH_INTERVAL_MS),
        },
        tmp_path / "worker-1.log",
        port,
    )
    second: WorkerProcess | None = None
    fleet = LoadFleet(broker.port, passwords, seconds=LOAD_SECONDS)
    load: asyncio.Task[None] | None = None
    try:
        first.start()
        await first.wait_subscribed(1)
        load = asyncio.create_task(fleet.run())

        # Mid-load: rows are committed, and the first worker has messages in hand.
        async def committed_mid_load() -> bool:
            return await stored_rows(pool, fleet.vins) > 0 and fleet.messages_sent >= 5 * len(
                fleet.cars
            )

        await wait_until(committed_mid_load, 15, "first rows committed")

        # 0.3-0.8 s after a commit: the next batch has begun (20 messages/s arrive) and will
        # not commit before 1 s after its first message.
        async def inside_a_batch() -> bool:
            last = first.metric("fleetlink_ingest_last_commit_timestamp_seconds")
            return last is not None and 0.3 < time.time() - last < 0.8

        await wait_until(inside_a_batch, 10, "kill window", poll_s=0.02)
        first_messages = first.metric("fleetlink_ingest_messages_total")
        rows_at_kill = await stored_rows(pool, fleet.vins)
        messages_at_kill = fleet.messages_sent
        first.kill()
        assert not load.done(), "the load ended before the kill: not mid-load"

        await asyncio.sleep(DEAD_SECONDS)  # the load goes on; the broker queues for the session
        # Its own metrics port, chosen now that the first worker's is closed.
        second = WorkerProcess(
            {**env, "FLEETLINK_INGEST_METRICS_PORT": str(port := free_port())},
            tmp_path / "worker-2.log",
            port,
        )
        second.start()
        await second.wait_subscribed(1)

        await asyncio.wait_for(asyncio.shield(load), LOAD_SECONDS + 30)
        await wait_all_stored(pool, fleet, 30)
        await asyncio.sleep(1.0)  # let any redelivery still on its way land too
        outcome = await audit(pool, fleet)
        second_messages = second.metric("fleetlink_ingest_messages_total")
    finally:
        if load is not None and not load.done():
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)
        first.stop()
        second_rc = second.stop() if second is not None else None
        broker.stop()

    deliveries, redeliveries = broker.deliveries(SERVICE)
    print(
        f"\n[kill -9] {outcome.figures()}; killed after {rows_at_kill} rows /"
        f" {messages_at_kill} messages sent; worker 1 had batched >= {first_messages} messages,"
        f" worker 2 batched {second_messages}; broker deliveries to ingest {deliveries}"
        f" (redelivered with DUP {redeliveries}); car resends {fleet.resends};"
        f" runtime {time.monotonic() - started:.1f} s"
    )
    assert outcome.lost == 0, outcome.figures()
    assert outcome.unexpected == 0, outcome.figures()
    assert outcome.duplicate_rows == 0, outcome.figures()
    assert outcome.dead_letters == 0, outcome.figures()
    assert 0 < rows_at_kill < outcome.values_sent, "the kill was not in the middle of the load"
    # The fault really exercised redelivery: the broker handed the restarted worker what the
    # killed one had received but not acknowledged.
    assert redeliveries > 0, (deliveries, redeliveries)
    assert deliveries > outcome.messages_sent, (deliveries, outcome.messages_sent)
    assert second_messages is not None and second_messages > 0
    assert second is not None and second_rc == 0, second and second.log()[-3000:]
