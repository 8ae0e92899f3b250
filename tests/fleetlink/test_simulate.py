"""``fleetlink simulate``: file limits, progress and summary output, the command against a real
broker (real time, backfill, SIGTERM), and the scaled-down scale check with a real database."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from bench.simulate_scale import SimulateBenchOptions, run_simulate_bench
from fleetlink.cli import build_parser
from fleetlink.fleet_file import FleetFile
from fleetlink.settings import FleetLinkSettings
from fleetlink.simulate import OpenFilesLimitError, raise_open_files_limit, run_simulate
from protocol.topics import TopicKind, fleet_subscription
from simulator.fleet import build_fleet
from simulator.progress import Rates, RunSummary, progress_line, summary_text
from simulator.runner import FleetProgress

REPO = Path(__file__).resolve().parents[2]


def test_the_open_files_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 2300:
        pytest.skip(f"hard limit {hard} cannot show the raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        assert raise_open_files_limit(2000) == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
        with pytest.raises(OpenFilesLimitError, match="hard limit") as caught:
            raise_open_files_limit(hard)
        assert caught.value.code == "open_files_limit"
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _progress(**changes: object) -> FleetProgress:
    base: dict[str, object] = {
        "vehicles": 2000,
        "connected": 1998,
        "published_messages": 10_000,
        "published_samples": 50_000,
        "published_events": 12,
        "sampled": 50_400,
        "backlog": 400,
        "dropped": 3,
        "connects": 2000,
        "connection_losses": 1,
        "connect_failures": 0,
        "offline_by_pattern": 0,
        "sim_ms": 1_763_892_000_000,
        "finished": False,
    }
    base.update(changes)
    return FleetProgress(**base)  # type: ignore[arg-type]


def test_the_progress_line_shows_what_an_operator_watches() -> None:
    line = progress_line(_progress(), Rates(402.4, 2011.0))
    assert line == (
        "connected 1998/2000  402 msg/s  2,011 samples/s  backlog 400  dropped 3"
        "  sim 2025-11-23 10:00:00Z"
    )
    assert "no coverage 7" in progress_line(_progress(offline_by_pattern=7), Rates(0, 0))


def test_the_summary_has_the_run_figures() -> None:
    summary = RunSummary(
        vehicles=2000,
        mode="backfill",
        duration_s=120.0,
        sim_start_ms=1_763_892_000_000,
        sim_end_ms=1_763_978_400_000,
        sampled=240_000,
        published_messages=48_000,
        published_samples=239_990,
        published_events=310,
        unsent_samples=10,
        dropped_samples=0,
        connects=2003,
        connection_losses=3,
        connect_failures=1,
        max_connected=2000,
        connect_time_s=10.4,
        finished=True,
    )
    text = summary_text(summary)
    for fragment in (
        "simulated 2000 vehicles for 120.0 s (backfill",
        "2025-11-23 10:00:00Z .. 2025-11-24 10:00:00Z",
        "all connected after 10.4 s",
        "48,000 messages, 239,990 samples acknowledged by the broker (2,000/s) of 240,000 sampled",
        "10 unsent, 0 dropped",
        "310 acknowledged",
        "2,003 connects, 3 connection losses, 1 failed connects",
    ):
        assert fragment in text
    assert json.loads(json.dumps(summary.to_dict()))["published_samples"] == 239_990


def _fleet_file(tmp_path: Path, test_vehicles, vehicles: int, seed: int = 4) -> Path:
    passwords = {str(p.vin): f"pw-{p.vin[-6:]}" for p in build_fleet(vehicles, seed)}
    test_vehicles.passwords.update(passwords)
    path = tmp_path / "fleet.json"
    FleetFile(seed=seed, passwords=passwords).save(path)
    return path


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["simulate", *argv])


async def _simulate(args: argparse.Namespace) -> tuple[int, str]:
    out = io.StringIO()
    loop = asyncio.get_running_loop()
    try:
        code = await run_simulate(args, FleetLinkSettings(database_url=None), out)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return code, out.getvalue()


async def test_real_time_run_stops_after_its_seconds_with_nothing_left(
    amqtt_broker, test_vehicles, tmp_path: Path
) -> None:
    fleet = _fleet_file(tmp_path, test_vehicles, 6)
    summary_path = tmp_path / "summary.json"
    args = _args(
        "--vehicles=6",
        "--seed=4",
        "--seconds=4",
        f"--mqtt-url=mqtt://{amqtt_broker.host}:{amqtt_broker.port}",
        f"--fleet-file={fleet}",
        "--publish-interval=1",
        f"--summary-json={summary_path}",
    )
    code, out = await _simulate(args)
    assert code == 0
    summary = json.loads(summary_path.read_text())
    assert summary["mode"] == "realtime" and summary["max_connected"] == 6
    assert summary["published_samples"] == summary["sampled"] >= 6 * 4
    assert summary["unsent_samples"] == 0 and summary["dropped_samples"] == 0
    assert "simulated 6 vehicles" in out and "0 unsent" in out
    # The cars' message counters were kept, as a car keeps them in non-volatile memory.
    assert len(FleetFile.load(fleet).last_seqs) == 6  # type: ignore[union-attr]


async def test_a_backfill_finishes_by_itself_at_the_present(
    amqtt_broker, test_vehicles, tmp_path: Path
) -> None:
    fleet = _fleet_file(tmp_path, test_vehicles, 4)
    summary_path = tmp_path / "summary.json"
    started_ms = time.time_ns() // 1_000_000
    args = _args(
        "--vehicles=4",
        "--seed=4",
        "--days=0.25",
        f"--mqtt-url=mqtt://{amqtt_broker.host}:{amqtt_broker.port}",
        f"--fleet-file={fleet}",
        f"--summary-json={summary_path}",
    )
    code, _ = await asyncio.wait_for(_simulate(args), 120)
    summary = json.loads(summary_path.read_text())
    assert code == 0 and summary["finished"] and summary["mode"] == "backfill"
    assert abs(summary["sim_start_ms"] - (started_ms - 6 * 3_600_000)) < 60_000
    assert summary["sim_end_ms"] >= started_ms - 1000
    assert summary["published_samples"] == summary["sampled"] > 0
    assert summary["unsent_samples"] == 0


async def _all_online(broker: Any, count: int) -> None:
    """Until ``count`` cars have published presence ``online`` (each does on connecting)."""
    online: set[str] = set()
    endpoint = broker.ingest_endpoint
    async with aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        identifier="svc-watch",
        username=endpoint.username,
        password=endpoint.password,
    ) as client:
        await client.subscribe(fleet_subscription(TopicKind.PRESENCE), qos=1)
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, bytes) and json.loads(payload).get("state") == "online":
                online.add(message.topic.value.split("/")[2])
            if len(online) >= count:
                return


async def test_sigterm_stops_the_fleet_cleanly_with_exit_0(
    amqtt_broker, test_vehicles, tmp_path: Path
) -> None:
    fleet = _fleet_file(tmp_path, test_vehicles, 5)
    summary_path = tmp_path / "summary.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FLEETLINK_DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from fleetlink.cli import main; sys.exit(main())",
        "simulate",
        "--vehicles=5",
        "--seed=4",
        f"--mqtt-url=mqtt://{amqtt_broker.host}:{amqtt_broker.port}",
        f"--fleet-file={fleet}",
        "--publish-interval=1",
        f"--summary-json={summary_path}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        # SIGTERM once every car is connected (not after a fixed sleep: a loaded machine
        # can take longer than that to start the process and connect the cars).
        await asyncio.wait_for(_all_online(amqtt_broker, 5), 60)
        await asyncio.sleep(2)  # the progress watch (0.25 s steps) notes them; a publish passes
        process.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    summary = json.loads(summary_path.read_text())
    assert summary["max_connected"] == 5 and summary["published_samples"] > 0
    assert summary["unsent_samples"] == 0  # flushed before leaving
    assert b"simulated 5 vehicles" in stdout


@pytest.mark.integration
async def test_scaled_down_scale_check_every_sent_sample_is_stored() -> None:
    """`fleetlink bench simulate` with 200 cars for 20 s: all connect, sent == stored."""
    figures = await run_simulate_bench(
        SimulateBenchOptions(vehicles=200, seconds=20, seed=3), io.StringIO()
    )
    assert figures["connected"] == 200
    assert figures["sent_samples"] >= 200 * 15
    assert figures["stored_samples"] == figures["sent_samples"]
    assert figures["lost_samples"] == 0 and figures["dropped_samples"] == 0
