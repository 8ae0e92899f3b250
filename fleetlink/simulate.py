"""``fleetlink simulate``: simulated vehicles against any broker, with a live progress line.

Composition only: credentials (fleet file or registry), the timeline the flags describe, fault
plans and ground truth (``simulator.faults`` / ``simulator.ground_truth``), the fleet runner,
the progress line and the summary. Ctrl-C / SIGTERM stop the fleet: the cars flush what they
can within ``--stop-flush-seconds`` and the command exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from api.vehicle_registry import VehicleRegistry
from fleetlink.database import create_pool
from fleetlink.fleet_file import FleetFile, save_sequence_numbers
from fleetlink.provisioning import provision_fleet
from fleetlink.runtime import install_stop_signals
from fleetlink.settings import FleetLinkSettings
from protocol.clock import SYSTEM_CLOCK, Clock
from protocol.endpoint import MqttEndpoint
from simulator.connectivity import PATTERNS
from simulator.faults import PRESETS, FaultSpec, load_fault_plan, plan_faults
from simulator.fleet import VehicleProfile, build_fleet
from simulator.ground_truth import GroundTruthWriter
from simulator.progress import RateMeter, RunSummary, progress_line, summary_text
from simulator.runner import (
    FleetMember,
    FleetProgress,
    FleetRunner,
    GroundTruthSink,
    LinkOptions,
    ModelFactory,
    SimulatedVehicle,
)
from simulator.timeline import MS_PER_DAY, Timeline, make_timeline
from simulator.vehicle_model import VehicleModel

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0  # the live line on a terminal
PROGRESS_LOG_INTERVAL_S = 10.0  # a log line when stderr is not a terminal
#: File descriptors besides the cars' sockets: logs, the database pool, the event loop, ...
SPARE_FILE_DESCRIPTORS = 256


class FleetCredentialsError(RuntimeError):
    code = "fleet_credentials_missing"


class OpenFilesLimitError(RuntimeError):
    code = "open_files_limit"


def raise_open_files_limit(vehicles: int) -> int:
    """One socket per car: raise RLIMIT_NOFILE's soft limit to the hard limit (the default soft
    limit, 1024, is below 2,000 cars). Returns the new soft limit."""
    needed = vehicles + SPARE_FILE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise OpenFilesLimitError(
            f"{vehicles} vehicles need about {needed} open files, but the hard limit is {hard}. "
            f"Raise it (e.g. `ulimit -Hn {needed}` as root, or LimitNOFILE= in a systemd unit), "
            "or run fewer vehicles per process."
        )
    return int(soft)


async def _members(args: argparse.Namespace, settings: FleetLinkSettings) -> list[FleetMember]:
    if settings.database_url:
        pool = await create_pool(settings.database_url, max_size=4)
        try:
            return await provision_fleet(
                VehicleRegistry(pool), args.fleet_file, args.vehicles, args.seed
            )
        finally:
            await pool.close()
    stored = FleetFile.load(args.fleet_file)
    seed = stored.seed if stored else args.seed
    profiles = build_fleet(args.vehicles, seed)
    missing = [p.vin for p in profiles if stored is None or p.vin not in stored.passwords]
    if missing:
        raise FleetCredentialsError(
            f"{len(missing)} of {args.vehicles} vehicles have no credentials in "
            f"{args.fleet_file}. Start `fleetlink up --vehicles {args.vehicles}` once, or set "
            "FLEETLINK_DATABASE_URL so they are registered."
        )
    assert stored is not None
    return [FleetMember(p, stored.passwords[p.vin], stored.last_seqs.get(p.vin)) for p in profiles]


def parse_start(text: str) -> int:
    """``--start``: epoch milliseconds or an ISO 8601 time with a zone."""
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"--start {text!r} needs a time zone, e.g. 2025-05-01T00:00:00Z")
    return round(moment.timestamp() * 1000)


def timeline_from_args(args: argparse.Namespace, now_ms: int) -> Timeline:
    return make_timeline(
        now_ms,
        speedup=args.speedup,
        days=args.days,
        start_ms=parse_start(args.start) if args.start else None,
        retention_days=args.retention_days,
    )


def _fault_plan(
    spec: str, profiles: Sequence[VehicleProfile], seed: int, timeline: Timeline
) -> list[FaultSpec]:
    """``--faults none|default|PATH``: the whole fleet's plan (each model picks its own VIN)."""
    if spec in PRESETS:
        end_ms = timeline.end_ms or timeline.start_ms
        days = max((end_ms - timeline.start_ms) / MS_PER_DAY, 1.0)
        return plan_faults(profiles, seed=seed, start_ms=timeline.start_ms, days=days, preset=spec)
    return load_fault_plan(Path(spec))


def model_factory(faults: Sequence[FaultSpec]) -> ModelFactory:
    by_vin: dict[str, list[FaultSpec]] = {}
    for fault in faults:
        by_vin.setdefault(str(fault.vin), []).append(fault)

    def build(
        profile: VehicleProfile, rng: random.Random, start_ms: int, max_substep_s: float
    ) -> SimulatedVehicle:
        return VehicleModel(
            profile,
            rng,
            start_ms,
            faults=by_vin.get(str(profile.vin), ()),
            max_substep_s=max_substep_s,
        )

    return build


@contextlib.contextmanager
def _ground_truth(path: Path | None) -> Iterator[GroundTruthSink | None]:
    if path is None:
        yield None
        return
    with GroundTruthWriter(path) as writer:
        yield writer


@dataclass
class _Watch:
    """Connect time and peak connections, noted at each progress snapshot."""

    started_s: float
    max_connected: int = 0
    all_connected_s: float | None = None

    def note(self, progress: FleetProgress, at_s: float) -> None:
        self.max_connected = max(self.max_connected, progress.connected)
        if self.all_connected_s is None and progress.connected == progress.vehicles > 0:
            self.all_connected_s = at_s - self.started_s


async def _report_progress(
    runner: FleetRunner, task: asyncio.Task[None], watch: _Watch, stop: asyncio.Event, args: Any
) -> None:
    tty = sys.stderr.isatty()
    meter = RateMeter(time.monotonic())
    last_line = time.monotonic()
    # Connect time wants a fine grain; the line itself is printed at its own pace.
    step_s = 0.25
    while not task.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), step_s)
        now = time.monotonic()
        progress = runner.progress()
        watch.note(progress, now)
        if args.seconds and now - watch.started_s >= args.seconds:
            stop.set()
        interval = PROGRESS_INTERVAL_S if tty else PROGRESS_LOG_INTERVAL_S
        if now - last_line >= interval and not task.done():
            line = progress_line(progress, meter.update(progress, now))
            last_line = now
            if tty:
                print(f"\r\x1b[2K{line}", end="", file=sys.stderr, flush=True)
            else:
                log.info("simulate: %s", line)
    if tty:
        print(file=sys.stderr, flush=True)


def _summary(runner: FleetRunner, watch: _Watch, elapsed_s: float) -> RunSummary:
    p = runner.progress()
    timeline = runner.timeline
    return RunSummary(
        vehicles=p.vehicles,
        mode=timeline.mode.value,
        duration_s=round(elapsed_s, 3),
        sim_start_ms=timeline.start_ms,
        sim_end_ms=p.sim_ms,
        sampled=p.sampled,
        published_messages=p.published_messages,
        published_samples=p.published_samples,
        published_events=p.published_events,
        unsent_samples=p.backlog,
        dropped_samples=p.dropped,
        connects=p.connects,
        connection_losses=p.connection_losses,
        connect_failures=p.connect_failures,
        max_connected=watch.max_connected,
        connect_time_s=(
            round(watch.all_connected_s, 3) if watch.all_connected_s is not None else None
        ),
        finished=p.finished,
    )


def build_runner(
    args: argparse.Namespace,
    members: Sequence[FleetMember],
    endpoint: MqttEndpoint,
    clock: Clock,
    ground_truth: GroundTruthSink | None,
) -> FleetRunner:
    timeline = timeline_from_args(args, clock.now_ms())
    faults = _fault_plan(args.faults, [m.profile for m in members], args.seed, timeline)
    return FleetRunner(
        members,
        endpoint,
        clock,
        seed=args.seed,
        timeline=timeline,
        sampling=timeline.sampling(
            driving_s=args.sample_interval, parked_s=args.parked_sample_interval
        ),
        links=LinkOptions(
            publish_interval_s=args.publish_interval,
            connect_rate_per_s=args.connect_rate,
            stop_flush_s=args.stop_flush_seconds,
        ),
        outages=PATTERNS[args.outages],
        model_factory=model_factory(faults),
        ground_truth=ground_truth,
    )


async def run_simulate(args: argparse.Namespace, settings: FleetLinkSettings, out: TextIO) -> int:
    endpoint = MqttEndpoint.parse(args.mqtt_url or settings.mqtt_url)
    raise_open_files_limit(args.vehicles)
    members = await _members(args, settings)
    with _ground_truth(args.ground_truth) as ground_truth:
        runner = build_runner(args, members, endpoint, SYSTEM_CLOCK, ground_truth)
        stop = asyncio.Event()
        install_stop_signals(stop)
        watch = _Watch(time.monotonic())
        task = asyncio.create_task(runner.run(stop))
        await _report_progress(runner, task, watch, stop, args)
        await task
        summary = _summary(runner, watch, time.monotonic() - watch.started_s)
    if args.fleet_file.exists():
        save_sequence_numbers(args.fleet_file, runner.sequence_numbers())
    print(summary_text(summary), file=out, flush=True)
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary.to_dict(), indent=1) + "\n")
    return 0
