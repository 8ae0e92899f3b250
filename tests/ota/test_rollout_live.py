"""Must-show 2 of issue 9 at test size: the benchmark's own code (``bench/ota_rollout.py``:
API on uvicorn, broker, scheduler, cars with OTA clients on their own MQTT connections)
with 30 cars. With 2 % injected install failures the campaign completes; with 20 % it halts
itself in its first wave, and the cars of later waves are never offered the update.
``fleetlink bench ota`` runs the same with 500 cars."""

from __future__ import annotations

import io
from pathlib import Path

import asyncpg
import pytest

from bench.ota_rollout import OtaBenchOptions, run_scenario

pytestmark = pytest.mark.integration

WAVES = tuple(
    {"share": share, "success_threshold": 0.9, "failure_threshold": 0.1} for share in (0.5, 1.0)
)
OPTIONS = OtaBenchOptions(
    vehicles=30, seed=1, install_min_s=0.0, install_max_s=0.1, timeout_s=60, waves=WAVES
)


async def test_with_2_percent_failures_the_campaign_completes(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    result = await run_scenario(pool, tmp_path, OPTIONS, 0.02, io.StringIO().write)
    campaign = result.campaign
    assert result.failing == 1
    assert campaign["status"] == "completed" and campaign["current_wave"] == 1
    counts = {k: v for k, v in campaign["by_status"].items() if v}
    assert counts == {"installed": 29, "rolled_back": 1}
    assert result.codes == {"install_failed": 1}


async def test_with_20_percent_failures_it_halts_itself_in_its_first_wave(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    result = await run_scenario(pool, tmp_path, OPTIONS, 0.20, io.StringIO().write)
    campaign = result.campaign
    assert result.failing == 6
    assert campaign["status"] == "halted" and campaign["current_wave"] == 0
    assert campaign["status_reason"].startswith("wave 0: ")
    first, second = campaign["wave_stats"]
    assert first["size"] == 15 and first["in_flight"] == 0
    assert first["failed"] >= 2 and first["installed"] + first["failed"] == 15
    # The second wave was never opened: nobody there was offered anything.
    assert second["size"] == 15 and campaign["by_status"]["assigned"] == 15
