"""``fleetlink bench ingest``: the real pipeline under a realistic load, against its own limit.

One run, all on 127.0.0.1, everything started here and stopped here:

1. A fresh embedded PostgreSQL (fsync off) in a temporary directory, migrated.
2. A broker: Mosquitto with the production configuration when installed, else amqtt.
3. The real :class:`IngestWorker` on the real :class:`TelemetryStore` (wrapped to note commit
   times), in this process, with the ingest settings of the environment.
4. The load in a separate process (``bench.publisher``): N realistic cars, each sampling its
   signals (about 40 values) at ``--sample-hz`` and uploading them every
   ``--upload-interval-s`` seconds in one QoS 1 message (by default 10 Hz every 5 s: 50 samples
   a message, about 2.5 million values a second from the default 6,250 cars).
5. When the publishers are done and every acknowledged message is committed: the audit (lost,
   duplicates, from the database), publish-to-commit latency per message, and the limit (raw
   COPY of the same rows into the same tables, ``bench.copy_limit``).

``values_per_s`` is committed values / (last commit - first publish); ``ratio`` divides it by the
COPY rate. While ingest keeps up, ``values_per_s`` is the offered load (``offered_values_per_s``),
so the ratio measures the load as much as ingest: raise ``--vehicles`` until the latency grows
to find ingest's capacity.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import asyncpg

from bench.audit import Audit, audit
from bench.broker import HOST, INGEST_USER, BenchBroker
from bench.child import start_module, write_private
from bench.copy_limit import CopyRun, measure_copy_limit
from bench.ingest_side import SHARE_GROUP, InProcessIngest, WorkerProcesses
from bench.ingest_worker import WorkerConfig
from bench.measure import CommitLog, IngestTotals, percentile, process_cpu_s, tree_cpu_s
from bench.publisher import DEFAULT_SAMPLE_HZ, DEFAULT_UPLOAD_INTERVAL_S, LoadShape, PublisherConfig
from fleetlink.embedded_postgres import EmbeddedPostgres, PostgresOptions
from fleetlink.migrations import migrate
from ingest.settings import IngestSettings
from protocol.endpoint import MqttEndpoint
from simulator.fleet import build_fleet

BrokerChoice = Literal["auto", "mosquitto", "amqtt"]
DATABASE = "fleetlink_bench"
PUBLISHER_GRACE_S = 120.0  # beyond --seconds: connecting, the last PUBACKs, the report


#: 6,250 cars x 10 samples a second x about 40 values: about 2.5 million values a second.
DEFAULT_VEHICLES = 6_250
DEFAULT_MOSQUITTO_WORKERS = 2


@dataclass(frozen=True)
class IngestBenchOptions:
    vehicles: int = DEFAULT_VEHICLES
    seconds: float = 30.0
    seed: int = 1
    broker: BrokerChoice = "auto"
    drain_timeout_s: float = 120.0
    sample_hz: float = DEFAULT_SAMPLE_HZ  # each car reads all its signals this often
    upload_interval_s: float = DEFAULT_UPLOAD_INTERVAL_S  # and uploads them this often
    # Ingest workers: 1 runs in this process; more run as processes on one MQTT 5 shared
    # subscription, the way production scales `serve ingest` out. None: 2 on Mosquitto (one
    # worker is CPU-bound on its core), 1 on amqtt (no shared subscriptions).
    workers: int | None = None

    def __post_init__(self) -> None:
        # A bad shape is a ValueError now, before PostgreSQL and the broker are started.
        LoadShape(self.sample_hz, self.upload_interval_s)
        if self.workers is not None and self.workers < 1:
            raise ValueError("need at least one ingest worker")

    @property
    def shape(self) -> LoadShape:
        return LoadShape(self.sample_hz, self.upload_interval_s)


@dataclass
class _Progress:
    out: TextIO
    published: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


async def run_ingest_bench(options: IngestBenchOptions, progress_out: TextIO) -> dict[str, Any]:
    """Run the benchmark; returns the figures (see :func:`format_table` for their meaning)."""
    if options.vehicles < 1 or options.seconds <= 0:
        raise ValueError("need at least one vehicle and a positive duration")
    progress = _Progress(progress_out)
    with tempfile.TemporaryDirectory(prefix="fleetlink-bench-") as tmp:
        workdir = Path(tmp)
        server = EmbeddedPostgres(workdir / "pg", PostgresOptions(fsync=False))
        broker = BenchBroker(
            workdir,
            secrets.token_urlsafe(16),
            {
                str(p.vin): secrets.token_urlsafe(16)
                for p in build_fleet(options.vehicles, options.seed)
            },
            ingest_users=tuple(
                INGEST_USER if i == 0 else f"{INGEST_USER}-{i + 1}"
                for i in range(options.workers or DEFAULT_MOSQUITTO_WORKERS)
            ),
        )
        try:
            progress.line("bench: starting PostgreSQL (fsync off) and the broker")
            await asyncio.to_thread(server.start)
            dsn = await create_bench_database(server)
            await broker.start(prefer_mosquitto=options.broker != "amqtt")
            if options.broker == "mosquitto" and broker.kind != "mosquitto":
                raise RuntimeError("--broker mosquitto: the mosquitto binary is not installed")
            return await _run(options, _Stack(workdir, server, dsn, broker), progress)
        finally:
            await broker.stop()
            await asyncio.to_thread(server.stop)


async def create_bench_database(server: EmbeddedPostgres) -> str:
    conn: asyncpg.Connection = await asyncpg.connect(server.dsn("postgres"))
    try:
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    dsn = server.dsn(DATABASE)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return dsn


def _postmaster_pid(server: EmbeddedPostgres) -> int | None:
    try:
        return int((server.pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class _CpuSnapshot:
    at: float
    ingest: float
    postgres: float
    broker: float

    @classmethod
    def take(
        cls,
        ingest: InProcessIngest | WorkerProcesses,
        postmaster: int | None,
        broker_pid: int | None,
    ) -> _CpuSnapshot:
        return cls(
            time.monotonic(),
            ingest.cpu_s(),
            tree_cpu_s(postmaster) if postmaster else 0.0,
            process_cpu_s(broker_pid) if broker_pid else 0.0,
        )


@dataclass
class _Stack:
    """What the run started: the database, the broker, and where the files go."""

    workdir: Path
    server: EmbeddedPostgres
    dsn: str
    broker: BenchBroker


@dataclass
class _LoadOutcome:
    """What the load phase left: the publishers' report and what ingest noted."""

    report: dict[str, Any]
    commits: CommitLog
    drained: bool
    cpu: tuple[_CpuSnapshot, _CpuSnapshot]
    peak_rss_kib: int
    totals: IngestTotals
    workers: int


async def _run(options: IngestBenchOptions, stack: _Stack, progress: _Progress) -> dict[str, Any]:
    settings = IngestSettings()
    vins = list(stack.broker.vehicles)
    load = await _drive_load(options, settings, stack, progress)
    progress.line("bench: auditing the database against what was published")
    conn: asyncpg.Connection = await asyncpg.connect(stack.dsn)
    try:
        result = await audit(
            conn,
            vins,
            load.report["messages"],
            load.report["failed"],
            spacing_ms=load.report["sample_spacing_ms"],
        )
    finally:
        await conn.close()
    progress.line("bench: measuring the limit (raw COPY of the same rows into the same tables)")
    copy_runs = await measure_copy_limit(stack.dsn)
    figures = _figures(options, load, result, copy_runs, vins)
    figures["broker"] = stack.broker.kind
    figures["batch_max_messages"] = settings.batch_max_messages
    figures["flush_interval_ms"] = settings.flush_interval_ms
    if stack.broker.kind != "mosquitto":
        figures["cpu_cores"]["broker"] = None  # amqtt runs inside the ingest process
    return figures


def _ingest_side(
    options: IngestBenchOptions, settings: IngestSettings, stack: _Stack
) -> InProcessIngest | WorkerProcesses:
    broker = stack.broker
    workers = options.workers or (DEFAULT_MOSQUITTO_WORKERS if broker.kind == "mosquitto" else 1)
    if workers > 1 and broker.kind != "mosquitto":
        raise RuntimeError("--workers above 1 needs Mosquitto: amqtt has no shared subscriptions")
    if workers == 1:
        endpoint = MqttEndpoint(
            HOST, broker.port, username=INGEST_USER, password=broker.ingest_password
        )
        return InProcessIngest(stack.dsn, endpoint, settings)
    configs = [
        WorkerConfig(stack.dsn, HOST, broker.port, user, broker.ingest_password, SHARE_GROUP)
        for user in broker.ingest_users[:workers]
    ]
    return WorkerProcesses(stack.workdir, configs)


async def _drive_load(
    options: IngestBenchOptions, settings: IngestSettings, stack: _Stack, progress: _Progress
) -> _LoadOutcome:
    """Ingest on, publishers on; returns once every acknowledged message is committed (or the
    drain timed out), with ingest stopped."""
    broker = stack.broker
    ingest = _ingest_side(options, settings, stack)
    workers = ingest.workers
    commits = ingest.commits
    publisher: asyncio.subprocess.Process | None = None
    totals: IngestTotals | None = None
    try:
        await ingest.start()
        progress.line(
            f"bench: {broker.kind} on {HOST}:{broker.port}; {workers} ingest worker(s)"
            f" subscribed; starting {options.vehicles} cars for {options.seconds:g} s"
            f" ({_shape_text(options.shape)}; generating their samples, then connecting)"
        )
        report_path = stack.workdir / "publisher-report.json"
        publisher = await _start_publisher(
            options, settings.max_payload_bytes, stack.workdir, broker, report_path
        )
        postmaster = _postmaster_pid(stack.server)
        reader = asyncio.create_task(_read_publisher(publisher, progress))
        connected = asyncio.create_task(progress.connected.wait())
        await asyncio.wait(
            [connected, reader], timeout=PUBLISHER_GRACE_S, return_when=asyncio.FIRST_COMPLETED
        )
        connected.cancel()
        cpu_start = _CpuSnapshot.take(ingest, postmaster, broker.pid)
        ticker = asyncio.create_task(_tick(progress, ingest))
        try:
            await asyncio.wait_for(publisher.wait(), options.seconds + PUBLISHER_GRACE_S)
            await reader
            if publisher.returncode != 0:
                raise RuntimeError(
                    f"publisher exited with {publisher.returncode}: "
                    + (stack.workdir / "publisher.log").read_text()[-2000:]
                )
            report = json.loads(report_path.read_text())
            progress.line("bench: publishers done; waiting for ingest to commit the rest")
            drained = await _drain(
                commits,
                list(broker.vehicles),
                report["messages"],
                options.drain_timeout_s,
                progress,
            )
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        cpu_end = _CpuSnapshot.take(ingest, postmaster, broker.pid)
        totals = await ingest.stop()
        return _LoadOutcome(
            report,
            commits,
            drained,
            (cpu_start, cpu_end),
            totals.peak_rss_kib,
            totals,
            workers,
        )
    finally:
        try:
            if totals is None:
                await ingest.stop()
        finally:
            if publisher is not None and publisher.returncode is None:
                publisher.kill()
                await publisher.wait()


def _shape_text(shape: LoadShape) -> str:
    return (
        f"{shape.sample_hz:g} Hz, one message every {shape.upload_interval_s:g} s:"
        f" {shape.samples_per_message} samples {shape.sample_spacing_ms} ms apart"
    )


async def _start_publisher(
    options: IngestBenchOptions,
    max_payload_bytes: int,
    workdir: Path,
    broker: BenchBroker,
    report_path: Path,
) -> asyncio.subprocess.Process:
    config = PublisherConfig(
        host=HOST,
        port=broker.port,
        passwords=list(broker.vehicles.values()),
        seed=options.seed,
        seconds=options.seconds,
        sample_hz=options.sample_hz,
        upload_interval_s=options.upload_interval_s,
        max_payload_bytes=max_payload_bytes,
    )
    config_path = write_private(workdir / "publisher-config.json", config.to_json())
    return await start_module(
        "bench.publisher",
        str(config_path),
        str(report_path),
        workdir=workdir,
        log_name="publisher.log",
    )


async def _read_publisher(process: asyncio.subprocess.Process, progress: _Progress) -> None:
    assert process.stdout is not None
    async for raw in process.stdout:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("event") == "connected":
            progress.line(
                f"bench: {event.get('cars')} cars connected ({event.get('pool_samples')} samples"
                f" each generated in {event.get('generate_s', 0):.1f} s, connecting took"
                f" {event.get('connect_s', 0):.1f} s)"
            )
            progress.connected.set()
        elif event.get("event") in ("progress", "done"):
            progress.published = int(event["published"])


async def _tick(progress: _Progress, ingest: InProcessIngest | WorkerProcesses) -> None:
    start = time.monotonic()
    last = (start, 0, 0, 0)
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        at, published, ingested, rows = last
        span = max(now - at, 1e-9)
        lag = ingest.lag_s
        progress.line(
            f"  t={now - start:5.1f}s  published {(progress.published - published) / span:7.0f}"
            f" msg/s  ingested {(ingest.messages - ingested) / span:7.0f} msg/s"
            f"  committed {(ingest.commits.rows - rows) / span:9.0f} values/s"
            f"  queue {ingest.queue_depth:5d}  lag {'-' if lag is None else f'{lag:.2f}'} s"
        )
        last = (now, progress.published, ingest.messages, ingest.commits.rows)


async def _drain(
    commits: CommitLog,
    vins: list[str],
    messages: list[list[int]],
    timeout_s: float,
    progress: _Progress,
) -> bool:
    """Wait until every message the broker acknowledged has been committed by ingest."""
    waiting = {(vins[m[0]], m[1]) for m in messages}
    checked = 0
    deadline = time.monotonic() + timeout_s
    while True:
        records = commits.records
        for record in records[checked:]:
            for vin, seqs in record.sequences.items():
                waiting.difference_update((vin, s) for s in seqs)
        checked = len(records)
        if not waiting:
            return True
        if time.monotonic() > deadline:
            progress.line(f"bench: {len(waiting)} messages still not committed; giving up")
            return False
        await asyncio.sleep(0.1)


def _latencies_ms(
    commits: CommitLog, vins: list[str], messages: list[list[int]]
) -> tuple[list[float], float | None]:
    """Publish-to-commit latency of every message (first commit of its (VIN, seq)), ascending;
    and the wall clock of the last commit that stored rows."""
    newest = {(vins[m[0]], m[1]): m[2] for m in messages}
    latencies: list[float] = []
    last_commit: float | None = None
    for record in commits.records:
        if record.rows:
            last_commit = record.at_ms
        for vin, seqs in record.sequences.items():
            for seq in seqs:
                ts = newest.pop((vin, seq), None)
                if ts is not None:
                    latencies.append(record.at_ms - ts)
    latencies.sort()
    return latencies, last_commit


def _figures(
    options: IngestBenchOptions,
    load: _LoadOutcome,
    result: Audit,
    copy_runs: list[CopyRun],
    vins: list[str],
) -> dict[str, Any]:
    report, commits, totals = load.report, load.commits, load.totals
    latencies, last_commit_ms = _latencies_ms(commits, vins, report["messages"])
    first_publish_ms = report["first_publish_ms"]
    wall_s = (
        (last_commit_ms - first_publish_ms) / 1000
        if last_commit_ms is not None and first_publish_ms is not None
        else 0.0
    )
    values_per_s = result.rows / wall_s if wall_s > 0 else 0.0
    best = max(copy_runs, key=lambda r: r.values_per_s)
    start, end = load.cpu
    cpu_wall = max(end.at - start.at, 1e-9)
    publisher_cpu_s: float = report["cpu_s"]
    return {
        "values_per_s": round(values_per_s, 1),
        "copy_values_per_s": round(best.values_per_s, 1),
        "ratio": round(values_per_s / best.values_per_s, 4) if best.values_per_s else 0.0,
        "lost": result.lost_values,
        "duplicates": result.duplicates,
        "p50_latency_ms": round(percentile(latencies, 50), 1),
        "p99_latency_ms": round(percentile(latencies, 99), 1),
        "max_latency_ms": round(latencies[-1], 1) if latencies else None,
        "vehicles": options.vehicles,
        "seconds": options.seconds,
        "sample_hz": options.sample_hz,
        "upload_interval_s": options.upload_interval_s,
        "samples_per_message": options.shape.samples_per_message,
        "pool_samples": report["pool_samples"],
        "publisher_generate_s": round(report["generate_s"], 2),
        "publisher_connect_s": round(report["connect_s"], 2),
        "max_payload_bytes": report["max_payload_bytes"],
        "messages_sent": result.messages_sent,
        "samples_sent": result.samples_sent,
        "values_sent": result.values_sent,
        "values_committed": result.rows,
        "offered_values_per_s": round(result.values_sent / options.seconds, 1),
        "wall_s": round(wall_s, 2),
        "lost_samples": result.lost_samples,
        "duplicate_rows": result.duplicate_rows,
        "duplicate_messages": result.duplicate_messages,
        "unexpected_rows": result.unexpected_rows,
        "seq_gaps": result.seq_gaps,
        "dead_letters": result.dead_letters,
        "publish_failures": len(report["failed"]),
        "all_committed": load.drained,
        "batches": len([r for r in commits.records if r.rows]),
        "batch_messages_mean": round(totals.messages / max(totals.batches, 1), 1),
        # Time inside TelemetryStore.write per batch (the transaction), as ingest measures it.
        "commit_ms_mean": round(1000 * totals.commit_s_sum / max(totals.commits, 1), 1),
        "copy_chunk_rows": best.chunk_rows,
        "copy_runs": [
            {
                "chunk_rows": r.chunk_rows,
                "seconds": round(r.seconds, 3),
                "values_per_s": round(r.values_per_s, 1),
            }
            for r in copy_runs
        ],
        "peak_rss_mib": round(load.peak_rss_kib / 1024, 1),  # the largest ingest process
        "workers": load.workers,
        "publisher_peak_rss_mib": round(report["peak_rss_kib"] / 1024, 1),
        # CPU cores used during the load (publisher: over its own publishing span).
        "cpu_cores": {
            "ingest": round((end.ingest - start.ingest) / cpu_wall, 2),
            "postgres": round((end.postgres - start.postgres) / cpu_wall, 2),
            "broker": round((end.broker - start.broker) / cpu_wall, 2),
            "publisher": round(publisher_cpu_s / options.seconds, 2),
        },
    }


def format_table(figures: dict[str, Any]) -> str:
    f = figures
    cores = f["cpu_cores"]
    broker_cores = "in ingest process" if cores["broker"] is None else f"{cores['broker']:.2f}"
    copy_runs = ", ".join(
        f"{r['chunk_rows']:,}-row chunks {r['values_per_s']:,.0f}/s" for r in f["copy_runs"]
    )
    rows = [
        (
            "load",
            f"{f['vehicles']:,} cars x {f['seconds']:g} s via {f['broker']}, each sampling at"
            f" {f['sample_hz']:g} Hz and sending one message every {f['upload_interval_s']:g} s"
            f" ({f['samples_per_message']} samples/msg,"
            f" {f['values_sent'] / max(f['samples_sent'], 1):.1f} values/sample,"
            f" up to {f['max_payload_bytes'] / 1024:,.0f} KiB/msg)",
        ),
        (
            "sent",
            f"{f['messages_sent']:,} messages, {f['samples_sent']:,} samples, "
            f"{f['values_sent']:,} values ({f['offered_values_per_s']:,.0f} values/s offered)",
        ),
        (
            "ingest",
            f"{f['values_per_s']:,.0f} values/s committed "
            f"({f['values_committed']:,} values in {f['wall_s']:.1f} s,"
            " first publish to last commit)",
        ),
        ("limit", f"{f['copy_values_per_s']:,.0f} values/s raw COPY ({copy_runs})"),
        ("ratio", f"{f['ratio']:.3f}"),
        ("lost", f"{f['lost']} values ({f['lost_samples']} samples)"),
        (
            "duplicates",
            f"{f['duplicates']} ({f['duplicate_rows']} rows, "
            f"{f['duplicate_messages']} resent messages)",
        ),
        (
            "latency",
            f"p50 {f['p50_latency_ms']} ms, p99 {f['p99_latency_ms']} ms, "
            f"max {f['max_latency_ms']} ms (publish to commit)",
        ),
        (
            "batches",
            f"{f['batches']}, on average {f['batch_messages_mean']} messages and"
            f" {f['commit_ms_mean']} ms in the store (max {f['batch_max_messages']} messages,"
            f" flush {f['flush_interval_ms']} ms)",
        ),
        (
            "peak RSS",
            f"ingest {f['peak_rss_mib']} MiB (largest worker), publisher"
            f" {f['publisher_peak_rss_mib']} MiB",
        ),
        (
            "CPU cores",
            f"ingest {cores['ingest']:.2f}, postgres {cores['postgres']:.2f}, "
            f"broker {broker_cores}, publisher {cores['publisher']:.2f}",
        ),
        (
            "other",
            f"unexpected rows {f['unexpected_rows']}, seq gaps {f['seq_gaps']}, dead "
            f"letters {f['dead_letters']}, publish failures {f['publish_failures']}, "
            f"all committed {f['all_committed']}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
