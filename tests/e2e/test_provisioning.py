"""Issue 4's promise end to end on `fleetlink up`: a vehicle registered through the API, driven
by a plain paho client (no FleetLink code on the car side), lands in its own state only, and a
revocation through the API cuts its live connection within 5 s for good."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fleetlink.embedded_postgres import free_port
from fleetlink.runtime import UpOptions, embedded_stack
from ingest.settings import IngestSettings

pytestmark = pytest.mark.e2e

VIN, OTHER = "WF0XXXGCDX8R12345", "WF0XXXGCDX8R54321"


def register_body(vin: str) -> dict[str, object]:
    return {
        "vin": vin,
        "brand": "Ford",
        "model": "Focus",
        "model_year": 2024,
        "powertrain": "ice",
        "ecus": [{"ecu_id": "tcu", "hardware_id": "TCU-9", "software_version": "1.0.0"}],
    }


def paho_car(port: int, password: str) -> tuple[paho.Client, threading.Event, threading.Event]:
    connected, disconnected = threading.Event(), threading.Event()
    car = paho.Client(CallbackAPIVersion.VERSION2, client_id=VIN)
    car.username_pw_set(VIN, password)
    car.on_connect = lambda *a: (connected if not a[3].is_failure else disconnected).set()
    car.on_disconnect = lambda *a: disconnected.set()
    car.connect("127.0.0.1", port)
    car.loop_start()
    return car, connected, disconnected


async def test_register_drive_and_revoke_a_third_party_car(tmp_path: Path) -> None:
    mqtt_port = free_port()
    options = UpOptions(
        data_dir=tmp_path / "fl",
        vehicles=0,
        mqtt_port=mqtt_port,
        api_port=free_port(),
        db_fsync=False,
        ingest=IngestSettings(flush_interval_ms=50),
    )
    async with (
        embedded_stack(options) as stack,
        httpx.AsyncClient(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.admin_token}"}
        ) as api,
    ):
        created = await api.post("/v1/vehicles", json=register_body(VIN))
        assert created.status_code == 201, created.text
        password = created.json()["credentials"]["password"]
        assert (await api.post("/v1/vehicles", json=register_body(OTHER))).status_code == 201
        assert (await api.post("/v1/vehicles", json=register_body(VIN))).json()["code"] == (
            "vehicle_already_registered"
        )

        car, connected, disconnected = paho_car(mqtt_port, password)
        try:
            assert await asyncio.to_thread(connected.wait, 10)
            now = int(time.time() * 1000)
            for vin, speed in ((OTHER, 99.0), (VIN, 42.0)):
                sample = {"seq": 1, "samples": [{"ts": now, "signals": {"Vehicle.Speed": speed}}]}
                info = car.publish(f"v1/vehicles/{vin}/telemetry", json.dumps(sample), qos=1)
                await asyncio.to_thread(info.wait_for_publish, 10)

            deadline = time.monotonic() + 10
            while not (await api.get(f"/v1/vehicles/{VIN}/state")).json()["signals"]:
                assert time.monotonic() < deadline, "own telemetry never arrived"
                await asyncio.sleep(0.1)
            state = (await api.get(f"/v1/vehicles/{VIN}/state")).json()["signals"]
            assert state["Vehicle.Speed"]["value"] == 42.0
            assert (await api.get(f"/v1/vehicles/{OTHER}/state")).json()["signals"] == {}
            detail = (await api.get(f"/v1/vehicles/{VIN}")).json()
            assert detail["ecus"][0]["hardware_id"] == "TCU-9"

            revoked_at = time.monotonic()
            assert (await api.post(f"/v1/vehicles/{VIN}/revoke")).status_code == 200
            assert await asyncio.to_thread(disconnected.wait, 5), "not disconnected within 5 s"
            assert time.monotonic() - revoked_at < 5
        finally:
            car.loop_stop()
            car.disconnect()

        # It cannot come back.
        again, connected_again, refused = paho_car(mqtt_port, password)
        try:
            assert await asyncio.to_thread(refused.wait, 10)
            assert not connected_again.is_set()
        finally:
            again.loop_stop()
        assert stack.broker.denials["bad_credentials"] >= 1
