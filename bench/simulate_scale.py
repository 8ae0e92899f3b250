"""``fleetlink bench simulate``: one ``fleetlink simulate`` process drives N cars, each with its
own MQTT connection, and every sample it says it sent must be in the database.

One run, all on 127.0.0.1, everything started here and stopped here:

1. A fresh embedded PostgreSQL (fsync off) in a temporary directory, migrated.
2. A broker: Mosquitto with the production configuration when installed, else amqtt
   (in this process, sharing ingest's event loop: a lower bound).
3. The real :class:`IngestWorker` in this process.
4. ``fleetlink simulate --vehicles N --seconds T`` as its own process, with a fleet file of
   the cars' credentials, writing its summary as JSON.
5. When it has exited: wait until ingest has stored what it sent, then count the stored samples
   as ``SELECT count(*) FROM (SELECT DISTINCT vin, ts FROM telemetry WHERE vin = ANY($1)) s``
   (a sample is (VIN, ts)) and compare with the simulator's count of acknowledged samples.

Figures: connected (peak) / vehicles, time until all were connected, messages/s and samples/s
over the run, the simulator's CPU (cores) and peak RSS, sent vs stored and lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import asyncpg

from bench.broker import HOST, INGEST_USER, BenchBroker
from bench.child import child_env
from bench.ingest import BrokerChoice, create_bench_database
from fleetlink.embedded_postgres import EmbeddedPostgres, PostgresOptions
from fleetlink.fleet_file import FleetFile
from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from ingest.store import Batch, TelemetryStore
from protocol.endpoint import MqttEndpoint
from simulator.fleet import build_fleet

SUBSCRIBE_TIMEOUT_S = 60.0
SIMULATOR_GRACE_S = 180.0  # beyond --seconds: connecting, flushing, the summary
STOP_TIMEOUT_S = 30.0
STALL_S = 30.0  # stored count unchanged this long while short: what is missing is lost
STORED_SAMPLES_SQL = (
    "SELECT count(*) FROM (SELECT DISTINCT vin, ts FROM telemetry WHERE vin = ANY($1)) s"
)


@dataclass(frozen=True)
class SimulateBenchOptions:
    vehicles: int = 2000
    seconds: float = 120.0
    seed: int = 1
    broker: BrokerChoice = "auto"
    drain_timeout_s: float = 600.0
    extra_args: tuple[str, ...] = ()  # more `fleetlink simulate` flags
    # How long the simulator may take (None: --seconds plus a grace; a --days backfill sets it).
    simulator_timeout_s: float | None = None
    ingest: IngestSettings = field(default_factory=IngestSettings)


class BenchHooks(Protocol):
    """What a caller adds around the run (``fleetlink eval diagnostics``): ``start`` runs once
    the database is up and returns ingest's committed-batch hand-off (or None); ``finish`` runs
    after every sample is stored, before anything stops, and may add to the figures."""

    async def start(self, pool: asyncpg.Pool) -> Callable[[Batch], None] | None: ...

    async def finish(
        self, pool: asyncpg.Pool, figures: dict[str, Any], say: Callable[[str], None]
    ) -> None: ...


async def count_stored_samples(conn: asyncpg.Connection, vins: list[str]) -> int:
    return int(await conn.fetchval(STORED_SAMPLES_SQL, vins))


async def run_simulate_bench(
    options: SimulateBenchOptions, progress: TextIO, hooks: BenchHooks | None = None
) -> dict[str, Any]:
    # seconds 0: the simulator ends by itself (a --days backfill), bounded by its timeout.
    bounded = options.seconds > 0 or options.simulator_timeout_s is not None
    if options.vehicles < 1 or options.seconds < 0 or not bounded:
        raise ValueError("need at least one vehicle and a positive duration")

    def say(text: str) -> None:
        progress.write(text + "\n")
        progress.flush()

    profiles = build_fleet(options.vehicles, options.seed)
    passwords = {str(p.vin): secrets.token_urlsafe(12) for p in profiles}
    with tempfile.TemporaryDirectory(prefix="fleetlink-simbench-") as tmp:
        workdir = Path(tmp)
        server = EmbeddedPostgres(workdir / "pg", PostgresOptions(fsync=False))
        broker = BenchBroker(workdir, secrets.token_urlsafe(16), passwords)
        try:
            say("bench: starting PostgreSQL (fsync off) and the broker")
            await asyncio.to_thread(server.start)
            dsn = await create_bench_database(server)
            await broker.start(prefer_mosquitto=options.broker != "amqtt")
            if options.broker == "mosquitto" and broker.kind != "mosquitto":
                raise RuntimeError("--broker mosquitto: the mosquitto binary is not installed")
            fleet_file = workdir / "fleet.json"
            FleetFile(seed=options.seed, passwords=passwords).save(fleet_file)
            stack = _Stack(dsn, broker, fleet_file, workdir)
            figures = await _run(options, stack, say, hooks)
            figures["broker"] = broker.kind
            return figures
        finally:
            await broker.stop()
            await asyncio.to_thread(server.stop)


@dataclass(frozen=True)
class _Stack:
    dsn: str
    broker: BenchBroker
    fleet_file: Path
    workdir: Path


async def _run(
    options: SimulateBenchOptions,
    stack: _Stack,
    say: Callable[[str], None],
    hooks: BenchHooks | None,
) -> dict[str, Any]:
    dsn, broker, workdir = stack.dsn, stack.broker, stack.workdir
    pool: asyncpg.Pool = await asyncpg.create_pool(dsn, min_size=2, max_size=6)
    endpoint = MqttEndpoint(
        HOST, broker.port, username=INGEST_USER, password=broker.ingest_password
    )
    on_commit = await hooks.start(pool) if hooks else None
    worker = IngestWorker(TelemetryStore(pool), endpoint, options.ingest, on_commit=on_commit)
    stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(stop))
    vins = list(broker.vehicles)
    try:
        await asyncio.wait_for(worker.subscribed.wait(), SUBSCRIBE_TIMEOUT_S)
        say(
            f"bench: {broker.kind} on {HOST}:{broker.port}; ingest subscribed; "
            f"fleetlink simulate --vehicles {options.vehicles} --seconds {options.seconds:g}"
        )
        summary_path = workdir / "summary.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        code = await _simulate(options, broker, stack.fleet_file, summary_path, workdir)
        wall_s = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if code != 0:
            log_tail = (workdir / "simulate.log").read_text()[-3000:]
            raise RuntimeError(f"fleetlink simulate exited with {code}:\n{log_tail}")
        summary = json.loads(summary_path.read_text())
        sent = int(summary["published_samples"])
        say(f"bench: simulator done, {sent:,} samples acknowledged; waiting for ingest")
        async with pool.acquire() as conn:
            stored = await _wait_stored(conn, vins, sent, options.drain_timeout_s, say)
        cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        figures = {
            "vehicles": options.vehicles,
            "seconds": options.seconds,
            "connected": summary["max_connected"],
            "connect_time_s": summary["connect_time_s"],
            "sent_messages": summary["published_messages"],
            "sent_samples": sent,
            "sampled": summary["sampled"],
            "unsent_samples": summary["unsent_samples"],
            "dropped_samples": summary["dropped_samples"],
            "stored_samples": stored,
            "lost_samples": max(sent - stored, 0),
            "extra_stored_samples": max(stored - sent, 0),
            "connection_losses": summary["connection_losses"],
            "connect_failures": summary["connect_failures"],
            "messages_per_s": round(summary["published_messages"] / summary["duration_s"], 1),
            "samples_per_s": round(sent / summary["duration_s"], 1),
            "simulator_wall_s": round(wall_s, 1),
            "simulator_cpu_cores": round(cpu_s / wall_s, 2),
            "simulator_peak_rss_mib": round(after.ru_maxrss / 1024, 1),
            "ingest_rejects": dict(worker.stats.rejects),
            "ingest_messages": worker.stats.messages,
            "ingest_samples": worker.stats.samples,
            "ingest_dead_letters": worker.stats.dead_letters,
        }
        if hooks:
            await hooks.finish(pool, figures, say)
        return figures
    finally:
        stop.set()
        try:
            await asyncio.wait_for(worker_task, STOP_TIMEOUT_S)
        finally:
            await pool.close()


async def _simulate(
    options: SimulateBenchOptions,
    broker: BenchBroker,
    fleet_file: Path,
    summary_path: Path,
    workdir: Path,
) -> int:
    argv = [
        sys.executable,
        "-c",
        "import sys; from fleetlink.cli import main; sys.exit(main())",
        "simulate",
        f"--vehicles={options.vehicles}",
        f"--seed={options.seed}",
        f"--seconds={options.seconds}",
        f"--mqtt-url=mqtt://{HOST}:{broker.port}",
        f"--fleet-file={fleet_file}",
        f"--summary-json={summary_path}",
        *options.extra_args,
    ]
    env = child_env()
    env.pop("FLEETLINK_DATABASE_URL", None)  # credentials come from the fleet file
    with (workdir / "simulate.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=log, stderr=log, env=env, cwd=workdir, start_new_session=True
        )
    try:
        timeout_s = options.simulator_timeout_s or options.seconds + SIMULATOR_GRACE_S
        return await asyncio.wait_for(process.wait(), timeout_s)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _wait_stored(
    conn: asyncpg.Connection,
    vins: list[str],
    sent: int,
    timeout_s: float,
    say: Callable[[str], None],
) -> int:
    """Count stored samples until they reach ``sent``, stop growing for STALL_S, or time out."""
    deadline = time.monotonic() + timeout_s
    stored, last_change, last_said = -1, time.monotonic(), 0.0
    while True:
        count = await count_stored_samples(conn, vins)
        now = time.monotonic()
        if count != stored:
            stored, last_change = count, now
        if stored >= sent or now > deadline or now - last_change > STALL_S:
            return stored
        if now - last_said >= 5:
            say(f"bench: {stored:,} of {sent:,} samples stored")
            last_said = now
        await asyncio.sleep(0.5)


def format_table(f: dict[str, Any]) -> str:
    connect = "-" if f["connect_time_s"] is None else f"{f['connect_time_s']:.1f} s"
    rows = [
        ("load", f"{f['vehicles']} cars x {f['seconds']:g} s via {f['broker']}"),
        ("connected", f"{f['connected']}/{f['vehicles']} (all connected after {connect})"),
        (
            "sent",
            f"{f['sent_messages']:,} messages, {f['sent_samples']:,} samples "
            f"({f['messages_per_s']:,.0f} msg/s, {f['samples_per_s']:,.0f} samples/s)",
        ),
        ("stored", f"{f['stored_samples']:,} samples"),
        ("lost", f"{f['lost_samples']:,} samples (extra stored: {f['extra_stored_samples']:,})"),
        (
            "simulator",
            f"{f['simulator_cpu_cores']:.2f} cores, "
            f"peak RSS {f['simulator_peak_rss_mib']:,.0f} MiB,"
            f" {f['unsent_samples']:,} unsent, {f['dropped_samples']:,} dropped, "
            f"{f['connection_losses']} connection losses, {f['connect_failures']} failed connects",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.simulate_scale [VEHICLES [SECONDS]]``: the same as the CLI command."""
    args = sys.argv[1:] if argv is None else argv
    options = SimulateBenchOptions(
        vehicles=int(args[0]) if args else 2000, seconds=float(args[1]) if len(args) > 1 else 120
    )
    figures = asyncio.run(run_simulate_bench(options, sys.stderr))
    print(format_table(figures))
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return 0 if figures["lost_samples"] == 0 and figures["connected"] == options.vehicles else 1


if __name__ == "__main__":
    sys.exit(main())
