"""The transactional outbox: commit order, no skipped slow transactions, failures isolated,
replicas sharing a cursor handle each event once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from diagnostics.outbox import OutboxConsumer, OutboxEvent, append, prune

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.seen: list[str] = []
        self.fail_on = fail_on

    async def handle(self, conn: asyncpg.Connection, event: OutboxEvent) -> None:
        # The handler's own write must vanish when it fails.
        await conn.execute("INSERT INTO handled (subject) VALUES ($1)", event.subject)
        if event.subject == self.fail_on:
            raise ValueError("cannot handle " + event.subject)
        self.seen.append(event.subject)


async def _setup(pool: asyncpg.Pool) -> None:
    await pool.execute("CREATE TABLE handled (subject text)")


async def _append(pool: asyncpg.Pool, subject: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await append(conn, "test.event", subject, {"n": subject}, occurred_at=T0)


async def test_events_are_handled_once_in_commit_order(pool: asyncpg.Pool) -> None:
    await _setup(pool)
    for subject in ("a", "b", "c"):
        await _append(pool, subject)
    recorder = Recorder()
    consumer = OutboxConsumer(pool, "test", recorder)
    assert await consumer.process_pending() == 3
    assert await consumer.process_pending() == 0
    assert recorder.seen == ["a", "b", "c"]


async def test_a_slow_transaction_is_not_skipped(pool: asyncpg.Pool) -> None:
    """The slow transaction appends first (smaller id) but commits last: an id cursor would
    have moved past it."""
    await _setup(pool)
    recorder = Recorder()
    consumer = OutboxConsumer(pool, "test", recorder)
    async with pool.acquire() as slow:
        transaction = slow.transaction()
        await transaction.start()
        await append(slow, "test.event", "slow", {}, occurred_at=T0)
        await _append(pool, "fast")
        assert await consumer.process_pending() == 0  # held back until the slow one ends
        await transaction.commit()
    assert await consumer.process_pending() == 2
    assert recorder.seen == ["slow", "fast"]


async def test_rolled_back_events_never_appear(pool: asyncpg.Pool) -> None:
    await _setup(pool)
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await append(conn, "test.event", "gone", {}, occurred_at=T0)
        await transaction.rollback()
    await _append(pool, "kept")
    recorder = Recorder()
    assert await OutboxConsumer(pool, "test", recorder).process_pending() == 1
    assert recorder.seen == ["kept"]


async def test_a_failing_event_is_recorded_and_skipped(pool: asyncpg.Pool) -> None:
    await _setup(pool)
    for subject in ("a", "bad", "c"):
        await _append(pool, subject)
    recorder = Recorder(fail_on="bad")
    consumer = OutboxConsumer(pool, "test", recorder)
    await consumer.process_pending()
    assert recorder.seen == ["a", "c"]
    assert consumer.failed == 1
    assert await pool.fetchval("SELECT array_agg(subject ORDER BY subject) FROM handled") == [
        "a",
        "c",
    ]
    failure = await pool.fetchrow("SELECT consumer, error FROM outbox_failures")
    assert failure["consumer"] == "test"
    assert "cannot handle bad" in failure["error"]


async def test_replicas_share_the_cursor(pool: asyncpg.Pool) -> None:
    await _setup(pool)
    for n in range(50):
        await _append(pool, f"e{n}")
    first, second = Recorder(), Recorder()
    await asyncio.gather(
        OutboxConsumer(pool, "shared", first, batch_size=7).process_pending(),
        OutboxConsumer(pool, "shared", second, batch_size=7).process_pending(),
    )
    assert sorted(first.seen + second.seen) == sorted(f"e{n}" for n in range(50))
    # A consumer with another name starts from the beginning.
    other = Recorder()
    assert await OutboxConsumer(pool, "other", other).process_pending() == 50


async def test_run_wakes_on_notify(pool: asyncpg.Pool) -> None:
    await _setup(pool)
    recorder = Recorder()
    # A long poll interval: only the NOTIFY can wake it in time.
    consumer = OutboxConsumer(pool, "test", recorder, poll_interval_s=60)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(consumer.listening.wait(), 10)
    await asyncio.sleep(0.2)
    await _append(pool, "ping")
    async with asyncio.timeout(5):
        while recorder.seen != ["ping"]:  # noqa: ASYNC110 - polling a plain list
            await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_prune_keeps_what_a_consumer_has_not_passed(pool: asyncpg.Pool) -> None:
    await _setup(pool)
    await _append(pool, "old")
    await OutboxConsumer(pool, "done", Recorder()).process_pending()
    await pool.execute("INSERT INTO outbox_cursors (consumer) VALUES ('lagging')")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
    assert await _prune(pool, T0 + timedelta(days=1)) == 0  # 'lagging' has not read it
    await OutboxConsumer(pool, "lagging", Recorder()).process_pending()
    assert await _prune(pool, T0) == 0  # not older than the cut-off
    assert await _prune(pool, T0 + timedelta(days=1)) == 1


async def _prune(pool: asyncpg.Pool, older_than: datetime) -> int:
    async with pool.acquire() as conn:
        return await prune(conn, older_than=older_than)
