"""One ingest worker of ``fleetlink bench ingest --workers N``, in a process of its own.

    python -m bench.ingest_worker CONFIG.json

Production scales ingest out by running several ``fleetlink serve ingest`` processes on one MQTT 5
shared subscription (``$share/ingest/...``); this runs the same :class:`IngestWorker` that way,
with the benchmark's :class:`TimedStore`. CONFIG (mode 0600: it holds a password) names the
database, the broker account and the share group. Stdout carries JSON lines: ``subscribed``
once, then every 0.1 s the commits made since the last line (time, values, and the (VIN, seq) of
every message, for the benchmark's drain and latency) with the worker's counters, and ``stats``
at the end. SIGTERM stops the worker the way ``serve ingest`` stops: it drains what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.measure import CommitLog, TimedStore, totals_of
from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from protocol.aio import first_of
from protocol.endpoint import MqttEndpoint

REPORT_INTERVAL_S = 0.1


@dataclass(frozen=True)
class WorkerConfig:
    dsn: str
    host: str
    port: int
    username: str
    password: str
    share_group: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _report(worker: IngestWorker, log: CommitLog, stop: asyncio.Event) -> None:
    sent = 0
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REPORT_INTERVAL_S)
        records = log.records[sent:]
        sent += len(records)
        _emit(
            {
                "event": "commits",
                "commits": [[r.at_ms, r.rows, r.sequences] for r in records],
                "messages": worker.stats.messages,
                "queue": worker.stats.queue_depth,
                "lag": worker.stats.lag_s,
            }
        )
        if stop.is_set():
            return


async def run(config: WorkerConfig) -> None:
    settings = IngestSettings(
        client_id=config.username, share_group=config.share_group, mqtt_version="5"
    )
    pool: asyncpg.Pool = await asyncpg.create_pool(config.dsn, min_size=2, max_size=4)
    log = CommitLog()
    store = TimedStore(pool, log, timeout_s=settings.commit_timeout_ms / 1000)
    endpoint = MqttEndpoint(
        config.host, config.port, username=config.username, password=config.password
    )
    worker = IngestWorker(store, endpoint, settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(worker.run(stop))
    reporter: asyncio.Task[None] | None = None
    try:
        await first_of(worker.subscribed.wait(), asyncio.shield(task))
        if task.done():
            task.result()  # it failed before subscribing: say why
        _emit({"event": "subscribed"})
        reporter = asyncio.create_task(_report(worker, log, stop))
        await task
    finally:
        stop.set()
        if reporter is not None:
            await reporter
        await pool.close()
    _emit({"event": "stats", "totals": asdict(totals_of(worker.stats))})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.ingest_worker CONFIG.json", file=sys.stderr)
        return 2
    asyncio.run(run(WorkerConfig.from_json(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
