"""``fleetlink simulate``: simulated vehicles against any broker, with a live progress line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import TextIO

from api.vehicle_registry import VehicleRegistry
from fleetlink.database import create_pool
from fleetlink.fleet_file import FleetFile
from fleetlink.provisioning import provision_fleet
from fleetlink.runtime import install_stop_signals
from fleetlink.settings import FleetLinkSettings
from protocol.clock import SYSTEM_CLOCK
from protocol.endpoint import MqttEndpoint
from simulator.fleet import build_fleet
from simulator.runner import FleetMember, FleetProgress, FleetRunner

PROGRESS_INTERVAL_S = 2.0


class FleetCredentialsError(RuntimeError):
    code = "fleet_credentials_missing"


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
    return [FleetMember(p, stored.passwords[p.vin]) for p in profiles]


def _line(p: FleetProgress, rate: float) -> str:
    return (
        f"connected {p.connected}/{p.vehicles}  messages {p.published_messages}"
        f" ({rate:.0f}/s)  samples {p.published_samples}/{p.sampled}"
        f"  backlog {p.backlog}  dropped {p.dropped}"
    )


async def run_simulate(args: argparse.Namespace, settings: FleetLinkSettings, out: TextIO) -> int:
    endpoint = MqttEndpoint.parse(args.mqtt_url or settings.mqtt_url)
    members = await _members(args, settings)
    runner = FleetRunner(
        members, endpoint, SYSTEM_CLOCK, seed=args.seed, publish_interval_s=args.publish_interval
    )
    stop = asyncio.Event()
    install_stop_signals(stop)
    task = asyncio.create_task(runner.run(stop))
    started = time.monotonic()
    last_messages = 0
    tty = sys.stderr.isatty()
    while not task.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), PROGRESS_INTERVAL_S)
        progress = runner.progress()
        rate = (progress.published_messages - last_messages) / PROGRESS_INTERVAL_S
        last_messages = progress.published_messages
        print(
            ("\r" if tty else "") + _line(progress, rate),
            end="" if tty else "\n",
            file=sys.stderr,
            flush=True,
        )
        if args.seconds and time.monotonic() - started >= args.seconds:
            stop.set()
    await task
    final = runner.progress()
    elapsed = time.monotonic() - started
    print(
        f"\nsimulated {final.vehicles} vehicles for {elapsed:.0f} s: "
        f"{final.published_messages} messages, {final.published_samples} samples published "
        f"of {final.sampled} sampled, {final.backlog} unsent, {final.dropped} dropped",
        file=out,
        flush=True,
    )
    return 0 if final.backlog == 0 else 1
