"""Issue 8's must-show 2 on `fleetlink up`: an alert raised by a stream rule is in
``GET /v1/vehicles/{vin}/alerts`` within 5 s of its triggering sample being published, by a
plain paho client (no FleetLink code on the car side)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from fleetlink.embedded_postgres import free_port
from fleetlink.runtime import UpOptions, embedded_stack
from ingest.settings import IngestSettings
from tests.e2e.test_provisioning import paho_car, register_body

pytestmark = pytest.mark.e2e

VIN = "WF0XXXGCDX8R12345"
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
LIMIT_S = 5.0


async def _until_alert(api: httpx.AsyncClient, kind: str, deadline_s: float) -> dict[str, object]:
    deadline = time.monotonic() + deadline_s
    while True:
        alerts = (await api.get(f"/v1/vehicles/{VIN}/alerts", params={"type": kind})).json()
        if alerts["data"]:
            found: dict[str, object] = alerts["data"][0]
            return found
        assert time.monotonic() < deadline, f"no {kind} alert within {deadline_s} s"
        await asyncio.sleep(0.05)


async def test_a_stream_rule_alert_is_visible_within_five_seconds(tmp_path: Path) -> None:
    mqtt_port = free_port()
    options = UpOptions(
        data_dir=tmp_path / "fl",
        vehicles=0,
        mqtt_port=mqtt_port,
        api_port=free_port(),
        db_fsync=False,
        ingest=IngestSettings(),  # the default flush interval, as in production
    )
    async with (
        embedded_stack(options) as stack,
        httpx.AsyncClient(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}
        ) as api,
    ):
        created = await api.post("/v1/vehicles", json=register_body(VIN))
        assert created.status_code == 201, created.text
        car, connected, _ = paho_car(mqtt_port, created.json()["credentials"]["password"])
        try:
            assert await asyncio.to_thread(connected.wait, 10)
            topic = f"v1/vehicles/{VIN}/telemetry"
            now = int(time.time() * 1000)
            hot = [{"ts": now - s * 1000, "signals": {COOLANT: 117.0}} for s in (25, 15)]
            info = car.publish(topic, json.dumps({"seq": 1, "samples": hot}), qos=1)
            await asyncio.to_thread(info.wait_for_publish, 10)
            await asyncio.sleep(1.0)
            # Hot for 10 s only: below the rule's hold time, nothing yet.
            assert (await api.get(f"/v1/vehicles/{VIN}/alerts")).json()["count"] == 0

            # This sample completes 30 s above 115 C: the trigger.
            trigger = {"seq": 2, "samples": [{"ts": now + 5_000, "signals": {COOLANT: 118.0}}]}
            published = time.monotonic()
            info = car.publish(topic, json.dumps(trigger), qos=1)
            alert = await _until_alert(api, "coolant_overheating", LIMIT_S)
            overheat_s = time.monotonic() - published

            # A DTC event: the DTC severity map raises at once.
            event = {"seq": 3, "ts": now + 6_000, "type": "dtc", "code": "P0217", "active": True}
            published = time.monotonic()
            car.publish(f"v1/vehicles/{VIN}/events", json.dumps(event), qos=1)
            dtc = await _until_alert(api, "dtc", LIMIT_S)
            dtc_s = time.monotonic() - published
        finally:
            car.loop_stop()
            car.disconnect()

    print(f"\nalert latency: overheating {overheat_s:.2f} s, DTC {dtc_s:.2f} s")
    assert alert["severity"] == "critical"
    assert alert["evidence"]
    assert dtc["component"] == "P0217"
    assert overheat_s < LIMIT_S
    assert dtc_s < LIMIT_S
