"""Restart the broker (Mosquitto with persistence) under load: nothing lost at QoS 1.

Cars keep every message until PUBACK and republish after reconnecting; the broker writes the
sessions (with what it had not yet delivered to, or had not had acknowledged by, ingest) to its
persistence file on the way down and reads them back on start; ingest reconnects to its
persistent session by itself."""

from __future__ import annotations

import asyncio
import logging
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
    stored_rows,
    vehicle_passwords,
    wait_all_stored,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.mosquitto]

SERVICE = "svc-ingest-restart"
SERVICE_PASSWORD = "restart-test-secret"
LOAD_SECONDS = 18
DOWN_SECONDS = 3.0
# Ingest batches for 1 s, so the broker goes down while it holds unacknowledged deliveries.
FLUSH_INTERVAL_MS = 1000


async def test_broker_restart_under_load_loses_nothing_at_qos_1(
    mosquitto_factory: MosquittoFactory,
    pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ingest.consumer")
    started = time.monotonic()
    passwords = vehicle_passwords(fleet_vins())
    broker = mosquitto_factory({SERVICE: SERVICE_PASSWORD}, passwords, debug_log=True)
    worker = IngestWorker(
        TelemetryStore(pool),
        MqttEndpoint("127.0.0.1", broker.port, username=SERVICE, password=SERVICE_PASSWORD),
        IngestSettings(client_id=SERVICE, flush_interval_ms=FLUSH_INTERVAL_MS),
    )
    stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(stop))
    fleet = LoadFleet(broker.port, passwords, seconds=LOAD_SECONDS)
    load: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(worker.subscribed.wait(), 15)
        load = asyncio.create_task(fleet.run())

        async def committed_mid_load() -> bool:
            return await stored_rows(pool, fleet.vins) > 0 and fleet.messages_sent >= 5 * len(
                fleet.cars
            )

        await wait_until(committed_mid_load, 15, "first rows committed")
        rows_at_stop = await stored_rows(pool, fleet.vins)
        messages_at_stop = fleet.messages_sent
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(DOWN_SECONDS)  # the cars go on sampling and buffer
        unacked_while_down = fleet.unacknowledged
        assert not load.done(), "the load ended while the broker was down: not under load"
        await asyncio.to_thread(broker.start)

        await asyncio.wait_for(asyncio.shield(load), LOAD_SECONDS + 30)
        await wait_all_stored(pool, fleet, 30)
        await asyncio.sleep(1.0)
        outcome = await audit(pool, fleet)
    finally:
        if load is not None and not load.done():
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)
        stop.set()
        await asyncio.wait_for(worker_task, 20)
        broker.stop()

    deliveries, redeliveries = broker.deliveries(SERVICE)
    worker_reconnects = sum("broker connection lost" in r.getMessage() for r in caplog.records)
    print(
        f"\n[broker restart] {outcome.figures()}; broker down {DOWN_SECONDS:.0f} s after"
        f" {rows_at_stop} rows / {messages_at_stop} messages sent; messages buffered by cars"
        f" while down {unacked_while_down}; car connects {fleet.connects}, connection losses"
        f" {fleet.connection_losses}, resends {fleet.resends}; worker connection losses"
        f" {worker_reconnects}, messages {worker.stats.messages}; broker deliveries to ingest"
        f" {deliveries} (redelivered with DUP {redeliveries}); runtime"
        f" {time.monotonic() - started:.1f} s"
    )
    assert outcome.lost == 0, outcome.figures()
    assert outcome.unexpected == 0, outcome.figures()
    assert outcome.duplicate_rows == 0, outcome.figures()
    assert outcome.dead_letters == 0, outcome.figures()
    assert 0 < rows_at_stop < outcome.values_sent
    # The restart was felt on both sides, and the cars' retry path carried messages.
    assert fleet.connects >= 2 * len(fleet.cars), fleet.connects
    assert unacked_while_down > 0
    assert worker_reconnects >= 1
    assert fleet.unacknowledged == 0
