"""OTA on ``fleetlink up``: the stack's own simulated cars take a campaign end to end.

The operator publishes a telematics image and starts a campaign through the API; the
embedded rollout scheduler offers it over MQTT; each car's OTA client (in its own command
handling, on its own connection) reports its versions, refreshes the director's and the
image repository's metadata as TUF repositories, downloads, installs and reports
``installed``; the campaign completes and the API's installed-software record shows the new
version. Nothing here is a stand-in: the director, the scheduler and the cars are the ones
``fleetlink up`` runs. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetlink.embedded_postgres import free_port
from fleetlink.runtime import UpOptions, embedded_stack
from ingest.settings import IngestSettings
from simulator.fleet import build_fleet

pytestmark = pytest.mark.e2e

VEHICLES = 3
SEED = 5
IMAGE_VERSION = "9.1.0"
CAMPAIGN_TIMEOUT_S = 90.0
IN_FLIGHT = ("assigned", "offered", "accepted", "downloading", "downloaded", "installing")


async def _wait_connected(stack: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while stack.fleet.progress().connected < VEHICLES:
        assert time.monotonic() < deadline, f"cars connected: {stack.fleet.progress()}"
        await asyncio.sleep(0.1)


async def test_a_campaign_reaches_the_simulated_cars_of_fleetlink_up(tmp_path: Path) -> None:
    options = UpOptions(
        data_dir=tmp_path / "fl",
        vehicles=VEHICLES,
        seed=SEED,
        mqtt_port=free_port(),
        api_port=free_port(),
        db_fsync=False,
        publish_interval_s=1.0,
        ingest=IngestSettings(flush_interval_ms=50),
    )
    profiles = build_fleet(VEHICLES, SEED)  # the cars `fleetlink up` provisions
    vins = sorted(str(p.vin) for p in profiles)
    tcus = {str(p.vin): e for p in profiles for e in p.ecus if e.name == "tcu"}
    async with (
        embedded_stack(options) as stack,
        httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http,
    ):
        admin = {"Authorization": f"Bearer {stack.admin_token}"}

        async def ok(method: str, path: str, headers: dict[str, str] = admin, **kw: Any) -> Any:
            response = await http.request(method, path, headers=headers, **kw)
            assert response.status_code in (200, 201), f"{method} {path}: {response.text}"
            return response.json()

        await _wait_connected(stack, 30)
        params = [
            ("name", "tcu-fw"),
            ("version", IMAGE_VERSION),
            ("release_counter", "3"),
            *(("hardware_id", h) for h in sorted({e.hardware_id for e in tcus.values()})),
        ]
        image = random.Random(SEED).randbytes(32 * 1024)
        artifact = await ok(
            "POST",
            "/v1/ota/artifacts",
            params=params,
            content=image,
            headers={**admin, "Content-Type": "application/octet-stream"},
        )
        artifact = await ok("POST", f"/v1/ota/artifacts/{artifact['id']}/publish")
        campaign_id = str(uuid.uuid4())
        await ok(
            "POST",
            "/v1/ota/campaigns",
            json={
                "id": campaign_id,
                "name": f"TCU firmware {IMAGE_VERSION}",
                "target": artifact["target_path"],
                "targeting": {"vins": vins},
                "waves": [{"share": 1.0, "success_threshold": 0.9, "failure_threshold": 0.5}],
                # The simulated cars drive: the update must not wait for them to park.
                "preconditions": {
                    "require_parked": False,
                    "min_low_voltage_v": None,
                    "min_traction_soc_pct": None,
                },
                "owner_info": {
                    "purpose": "Telematics firmware",
                    "duration_min": 5,
                    "functions_unavailable": ["remote services"],
                },
            },
        )

        deadline = time.monotonic() + CAMPAIGN_TIMEOUT_S
        while True:
            campaign = await ok("GET", f"/v1/ota/campaigns/{campaign_id}")
            busy = sum(campaign["by_status"].get(s, 0) for s in IN_FLIGHT)
            if campaign["status"] in ("completed", "halted") and not busy:
                break
            assert time.monotonic() < deadline, f"campaign did not settle: {campaign}"
            await asyncio.sleep(0.5)

        assert campaign["status"] == "completed", campaign
        assert campaign["by_status"].get("installed") == VEHICLES, campaign["by_status"]
        for vin in vins:
            software = await ok("GET", f"/v1/vehicles/{vin}/software")
            installed = {e["ecu_serial"]: e for e in software["ecus"]}
            assert installed[tcus[vin].serial]["version"] == IMAGE_VERSION, software
