"""Stop PostgreSQL for 30 s under load and start it again: nothing lost, and ingest recovers by
itself (it stops acknowledging, retries with backoff, and resumes; the broker holds the rest).

A PostgreSQL server of the test's own (the session server is shared with other tests)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import asyncpg
import pytest

from fleetlink.embedded_postgres import EmbeddedPostgres, PostgresOptions
from fleetlink.migrations import migrate
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

SERVICE = "svc-ingest-dbdown"
SERVICE_PASSWORD = "dbdown-test-secret"
OUTAGE_SECONDS = 30.0
LEAD_SECONDS = 4.0  # load before the outage
TAIL_SECONDS = 4.0  # load after it
RETRY_MAX_BACKOFF_MS = 2000


async def test_database_down_30_s_under_load_loses_nothing_and_recovers_by_itself(
    mosquitto_factory: MosquittoFactory, tmp_path: Path
) -> None:
    started = time.monotonic()
    server = EmbeddedPostgres(tmp_path / "pg", PostgresOptions(fsync=False))
    pool: asyncpg.Pool | None = None
    worker_task: asyncio.Task[None] | None = None
    load: asyncio.Task[None] | None = None
    stop = asyncio.Event()
    try:
        await asyncio.to_thread(server.start)
        port = server.port
        conn = await asyncpg.connect(server.dsn())
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(
            server.dsn(), min_size=1, max_size=4, timeout=5, command_timeout=10
        )
        passwords = vehicle_passwords(fleet_vins())
        broker = mosquitto_factory({SERVICE: SERVICE_PASSWORD}, passwords)
        worker = IngestWorker(
            TelemetryStore(pool, timeout_s=10),
            MqttEndpoint("127.0.0.1", broker.port, username=SERVICE, password=SERVICE_PASSWORD),
            IngestSettings(client_id=SERVICE, retry_max_backoff_ms=RETRY_MAX_BACKOFF_MS),
        )
        worker_task = asyncio.create_task(worker.run(stop))
        await asyncio.wait_for(worker.subscribed.wait(), 15)
        fleet = LoadFleet(
            broker.port, passwords, seconds=LEAD_SECONDS + OUTAGE_SECONDS + TAIL_SECONDS
        )
        load = asyncio.create_task(fleet.run())

        async def committing() -> bool:
            assert pool is not None
            return await stored_rows(pool, fleet.vins) > 0

        await wait_until(committing, 15, "first rows committed")
        await asyncio.sleep(max(LEAD_SECONDS - (time.monotonic() - started), 0))
        rows_before = await stored_rows(pool, fleet.vins)
        await asyncio.to_thread(server.stop)
        down_at = time.monotonic()
        batches_at_down = worker.stats.batches  # nothing can commit from here until start()

        async def failing() -> bool:
            return worker.stats.commit_failures > 0

        await wait_until(failing, 10, "commit failures seen while the database is down")
        await asyncio.sleep(max(OUTAGE_SECONDS - (time.monotonic() - down_at), 0))
        assert worker_task is not None and not worker_task.done(), "the worker died"
        batches_during = worker.stats.batches - batches_at_down
        failures_during = worker.stats.commit_failures
        assert not load.done(), "the load ended during the outage: not under load"
        await asyncio.to_thread(server.start)
        assert server.port == port
        up_at = time.monotonic()

        # No intervention from here: the worker finds the database again on its own.
        async def resumed() -> bool:
            return worker.stats.batches > batches_at_down + batches_during

        await wait_until(resumed, 30, "a commit after the database came back")
        recovered_after_s = time.monotonic() - up_at
        await asyncio.wait_for(asyncio.shield(load), TAIL_SECONDS + 30)
        await wait_all_stored(pool, fleet, 60)
        outcome = await audit(pool, fleet)
    finally:
        if load is not None and not load.done():
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)
        stop.set()
        if worker_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker_task, 20)
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 10)
        await asyncio.to_thread(server.stop)

    print(
        f"\n[database down {OUTAGE_SECONDS:.0f} s] {outcome.figures()}; rows before the outage"
        f" {rows_before}; batches committed while down {batches_during}; commit failures"
        f" {failures_during} during / {worker.stats.commit_failures} total; first commit"
        f" {recovered_after_s:.1f} s after restart; worker messages {worker.stats.messages},"
        f" batches {worker.stats.batches}; runtime {time.monotonic() - started:.1f} s"
    )
    assert outcome.lost == 0, outcome.figures()
    assert outcome.unexpected == 0, outcome.figures()
    assert outcome.duplicate_rows == 0, outcome.figures()
    assert outcome.dead_letters == 0, outcome.figures()
    assert rows_before > 0
    assert batches_during == 0
    assert failures_during > 0
