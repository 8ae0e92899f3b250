"""The ingest side of ``fleetlink bench ingest``: one :class:`IngestWorker` in the benchmark's
own process, or N worker processes on one MQTT 5 shared subscription (``bench.ingest_worker``),
the way production scales ``fleetlink serve ingest`` out. Either way the benchmark reads the
same things: the commits (for the drain and the latencies), live counters, CPU time, totals."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.child import start_module, write_private
from bench.ingest_worker import WorkerConfig
from bench.measure import (
    CommitLog,
    CommitRecord,
    IngestTotals,
    TimedStore,
    process_cpu_s,
    self_cpu_s,
    totals_of,
)
from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from protocol.endpoint import MqttEndpoint

SUBSCRIBE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
SHARE_GROUP = "ingest"


class InProcessIngest:
    """One worker on this process's event loop (what the benchmark always measured)."""

    def __init__(self, dsn: str, endpoint: MqttEndpoint, settings: IngestSettings) -> None:
        self.commits = CommitLog()
        self._dsn = dsn
        self._endpoint = endpoint
        self._settings = settings
        self._stop = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._worker: IngestWorker | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(self._dsn, min_size=2, max_size=4)
        timeout_s = self._settings.commit_timeout_ms / 1000
        store = TimedStore(self._pool, self.commits, timeout_s=timeout_s)
        self._worker = IngestWorker(store, self._endpoint, self._settings)
        self._task = asyncio.create_task(self._worker.run(self._stop))
        await asyncio.wait_for(self._worker.subscribed.wait(), SUBSCRIBE_TIMEOUT_S)

    workers = 1

    @property
    def messages(self) -> int:
        return self._worker.stats.messages if self._worker else 0

    @property
    def queue_depth(self) -> int:
        return self._worker.stats.queue_depth if self._worker else 0

    @property
    def lag_s(self) -> float | None:
        return self._worker.stats.lag_s if self._worker else None

    def cpu_s(self) -> float:
        return self_cpu_s()

    async def stop(self) -> IngestTotals:
        self._stop.set()
        try:
            if self._task is not None:
                await asyncio.wait_for(self._task, STOP_TIMEOUT_S)
        finally:
            if self._pool is not None:
                await self._pool.close()
        return IngestTotals() if self._worker is None else totals_of(self._worker.stats)


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    messages: int = 0
    queue_depth: int = 0
    lag_s: float | None = None
    totals: IngestTotals | None = None
    reader: asyncio.Task[None] | None = None


class WorkerProcesses:
    """N worker processes sharing the subscription; their commits stream back over stdout."""

    def __init__(self, workdir: Path, configs: list[WorkerConfig]) -> None:
        self.commits = CommitLog()
        self._workdir = workdir
        self._configs = configs
        self._workers: list[_Worker] = []

    async def start(self) -> None:
        for index, config in enumerate(self._configs):
            path = write_private(self._workdir / f"ingest-worker-{index}.json", config.to_json())
            process = await start_module(
                "bench.ingest_worker",
                str(path),
                workdir=self._workdir,
                log_name=f"ingest-worker-{index}.log",
                limit=64 * 1024 * 1024,  # a line holds every (VIN, seq) of 0.1 s of commits
            )
            worker = _Worker(process)
            worker.reader = asyncio.create_task(self._read(worker))
            self._workers.append(worker)
        # Every worker subscribed, or one of them ended (its stdout closed) first.
        subscribed = asyncio.create_task(self._all_subscribed())
        ended = [w.reader for w in self._workers if w.reader is not None]
        await asyncio.wait(
            [subscribed, *ended], timeout=SUBSCRIBE_TIMEOUT_S, return_when="FIRST_COMPLETED"
        )
        subscribed.cancel()
        if not all(w.subscribed.is_set() for w in self._workers):
            raise RuntimeError(
                "an ingest worker did not subscribe: "
                + (self._workdir / "ingest-worker-0.log").read_text()[-2000:]
            )

    async def _all_subscribed(self) -> None:
        for worker in self._workers:
            await worker.subscribed.wait()

    async def _read(self, worker: _Worker) -> None:
        assert worker.process.stdout is not None
        async for line in worker.process.stdout:
            event = json.loads(line)
            kind = event.get("event")
            if kind == "subscribed":
                worker.subscribed.set()
            elif kind == "commits":
                for at_ms, rows, sequences in event["commits"]:
                    self.commits.records.append(CommitRecord(at_ms, rows, sequences))
                    self.commits.rows += rows
                worker.messages = event["messages"]
                worker.queue_depth = event["queue"]
                worker.lag_s = event["lag"]
            elif kind == "stats":
                worker.totals = IngestTotals(**event["totals"])

    @property
    def workers(self) -> int:
        return len(self._configs)

    @property
    def messages(self) -> int:
        return sum(w.messages for w in self._workers)

    @property
    def queue_depth(self) -> int:
        return sum(w.queue_depth for w in self._workers)

    @property
    def lag_s(self) -> float | None:
        lags = [w.lag_s for w in self._workers if w.lag_s is not None]
        return max(lags) if lags else None

    def cpu_s(self) -> float:
        return sum(process_cpu_s(w.process.pid) for w in self._workers)

    async def stop(self) -> IngestTotals:
        totals = IngestTotals()
        for worker in self._workers:
            if worker.process.returncode is None:
                worker.process.terminate()
        for worker in self._workers:
            try:
                await asyncio.wait_for(worker.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
            if worker.reader is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader
            if worker.totals is not None:
                totals.messages += worker.totals.messages
                totals.batches += worker.totals.batches
                totals.commit_s_sum += worker.totals.commit_s_sum
                totals.commits += worker.totals.commits
                totals.peak_rss_kib = max(totals.peak_rss_kib, worker.totals.peak_rss_kib)
        return totals
