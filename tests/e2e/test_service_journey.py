"""Issue 7's journey end to end on `fleetlink up`: a car reports a fault over MQTT, the stream
rules raise an alert, the booking suggester books a visit, the owner confirms it, the service
centre checks the car in, opens and closes the work order, the alert resolves, and the owner's
app saw every step live on its Server-Sent Events stream.

Everything is the production path: the embedded stack (PostgreSQL, broker, ingest with its
stream rules, the outbox consumers, the API under uvicorn) on free loopback ports, the car an
MQTT client speaking the wire contract (``protocol.messages``), the app and the centre plain
HTTP clients with their own tokens. Every wait is bounded, so a broken step fails, naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import httpx
import pytest

from fleetlink.embedded_postgres import free_port
from fleetlink.runtime import UpOptions, embedded_stack
from ingest.settings import IngestSettings
from protocol.messages import EventMessage, EventType, Sample, TelemetryMessage

pytestmark = pytest.mark.e2e

VIN = "WVWZZZ1KZ8W123456"
EMAIL = "journey@example.com"
PASSWORD = "correct horse battery staple"
# Marienplatz, Munich: the seeded service centres are around it.
POSITION = {
    "Vehicle.CurrentLocation.Latitude": 48.137154,
    "Vehicle.CurrentLocation.Longitude": 11.576124,
}
MISFIRE = "P0301"  # SAE J2012 "Cylinder 1 Misfire Detected": a warning, a workshop visit
STEP_TIMEOUT_S = 15.0

T = TypeVar("T")


@dataclass
class Inbox:
    """What the app's SSE stream delivered: notifications by topic, in arrival order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def add(self, event: dict[str, Any]) -> None:
        async with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def topics(self) -> list[str]:
        return [e["topic"] for e in self.events]

    async def wait_for(self, topic: str, **data: Any) -> dict[str, Any]:
        """The first notification of ``topic`` whose ``data`` has these values."""

        def found() -> dict[str, Any] | None:
            return next(
                (
                    e
                    for e in self.events
                    if e["topic"] == topic and all(e["data"].get(k) == v for k, v in data.items())
                ),
                None,
            )

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(found), STEP_TIMEOUT_S)
        event = found()
        assert event is not None
        return event


async def read_stream(http: httpx.AsyncClient, headers: dict[str, str], inbox: Inbox) -> None:
    """The app's side of ``/v1/me/notifications/stream``: a real, followed HTTP stream."""
    async with http.stream("GET", "/v1/me/notifications/stream", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        kind, data = "", ""
        async for line in response.aiter_lines():
            if line == ": connected":
                inbox.connected.set()
            elif line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif line == "" and kind == "notification":
                await inbox.add(json.loads(data))
                kind, data = "", ""


@dataclass
class Timings:
    steps: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    async def step(self, name: str, action: Awaitable[T]) -> T:
        began = time.monotonic()
        try:
            return await action
        except TimeoutError:
            pytest.fail(f"{name}: nothing within {STEP_TIMEOUT_S:.0f} s")
        finally:
            self.steps[name] = round(time.monotonic() - began, 2)


async def until(check: Callable[[], Awaitable[bool]], interval_s: float = 0.1) -> None:
    while True:
        if await check():
            return
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def car(port: int, password: str) -> AsyncIterator[aiomqtt.Client]:
    """The vehicle: its own credentials, its own topics, QoS 1, as docs/protocol.md says."""
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier=VIN, username=VIN, password=password
    ) as client:
        yield client


async def test_an_alert_becomes_a_booking_a_repair_and_a_resolved_alert(tmp_path: Path) -> None:
    mqtt_port = free_port()
    options = UpOptions(
        data_dir=tmp_path / "fl",
        vehicles=0,
        mqtt_port=mqtt_port,
        api_port=free_port(),
        db_fsync=False,
        ingest=IngestSettings(flush_interval_ms=50),
    )
    timings = Timings()
    async with (
        embedded_stack(options) as stack,
        httpx.AsyncClient(base_url=stack.api_url, timeout=httpx.Timeout(10, read=None)) as http,
    ):
        admin = {"Authorization": f"Bearer {stack.admin_token}"}

        async def ok(method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
            response = await http.request(method, path, headers=headers, **kw)
            assert response.status_code in (200, 201), f"{method} {path}: {response.text}"
            return response.json()

        # The customer, their car, and location consent (without it no position is stored,
        # and without a position no workshop nearby can be suggested).
        customer = await ok(
            "POST", "/v1/customers", admin, json={"email": EMAIL, "password": PASSWORD}
        )
        vehicle = {
            "vin": VIN,
            "brand": "Volkswagen",
            "model": "Golf",
            "model_year": 2021,
            "powertrain": "ice",
        }
        password = (await ok("POST", "/v1/vehicles", admin, json=vehicle))["credentials"][
            "password"
        ]
        await ok("PUT", f"/v1/vehicles/{VIN}/owner", admin, json={"customer_id": customer["id"]})
        token = await ok(
            "POST",
            "/v1/auth/token",
            {},
            data={"grant_type": "password", "username": EMAIL, "password": PASSWORD},
        )
        me = {"Authorization": f"Bearer {token['access_token']}"}
        consent = {"source": "app", "purposes": {"location": True}}
        await ok("PUT", "/v1/me/consents", me, json=consent)

        inbox = Inbox()
        stream = asyncio.create_task(read_stream(http, me, inbox))
        try:
            await timings.step(
                "app stream connected", asyncio.wait_for(inbox.connected.wait(), STEP_TIMEOUT_S)
            )
            async with car(mqtt_port, password) as client:
                seq = 0

                async def position_stored() -> bool:
                    nonlocal seq
                    seq += 1
                    sample = Sample(
                        ts=int(time.time() * 1000), signals={**POSITION, "Vehicle.Speed": 0.0}
                    )
                    message = TelemetryMessage(seq=seq, samples=[sample])
                    await client.publish(
                        f"v1/vehicles/{VIN}/telemetry", message.model_dump_json(), qos=1
                    )
                    await asyncio.sleep(0.3)
                    state = await ok("GET", f"/v1/vehicles/{VIN}/state", me)
                    return "Vehicle.CurrentLocation.Latitude" in state["signals"]

                # Consent reaches ingest by NOTIFY: the car reports until its position is kept.
                await timings.step(
                    "position stored", asyncio.wait_for(until(position_stored), STEP_TIMEOUT_S)
                )
                seq += 1
                dtc = EventMessage(
                    seq=seq,
                    ts=int(time.time() * 1000),
                    type=EventType.DTC,
                    code=MISFIRE,
                    active=True,
                )
                await client.publish(f"v1/vehicles/{VIN}/events", dtc.model_dump_json(), qos=1)

            opened = await timings.step("alert opened", inbox.wait_for("alert.opened"))
            alert_id = opened["data"]["alert_id"]
            alert = await ok("GET", f"/v1/vehicles/{VIN}/alerts", me)
            assert [(a["id"], a["type"], a["component"], a["status"]) for a in alert["data"]] == [
                (alert_id, "dtc", MISFIRE, "open")
            ]

            suggested = await timings.step(
                "booking suggested", inbox.wait_for("booking.suggested", alert_id=alert_id)
            )
            booking_id = suggested["data"]["booking_id"]
            booking = await ok("GET", f"/v1/me/bookings/{booking_id}", me)
            assert (booking["source"], booking["status"], booking["vin"]) == (
                "suggestion",
                "requested",
                VIN,
            )
            assert "diagnostics" in booking["required_skills"]

            await ok("POST", f"/v1/me/bookings/{booking_id}/confirm", me)
            await timings.step(
                "confirmed", inbox.wait_for("booking.confirmed", booking_id=booking_id)
            )

            # The workshop the suggester chose, as a service client bound to that centre.
            centre_id = booking["centre_id"]
            client_body = {
                "client_id": "sc-journey",
                "name": booking["centre_name"],
                "role": "service_center",
                "centres": [centre_id],
            }
            secret = (await ok("POST", "/v1/auth/clients", admin, json=client_body))[
                "client_secret"
            ]
            grant = {
                "grant_type": "client_credentials",
                "client_id": "sc-journey",
                "client_secret": secret,
            }
            centre_token = await ok("POST", "/v1/auth/token", {}, data=grant)
            assert centre_token["role"] == "service_center"
            centre = {"Authorization": f"Bearer {centre_token['access_token']}"}
            # The centre sees the booking, with the alert it is about, and the booked car.
            at_centre = await ok("GET", f"/v1/service/bookings/{booking_id}", centre)
            assert (at_centre["alert_id"], at_centre["centre_id"]) == (alert_id, centre_id)
            assert (await http.get(f"/v1/vehicles/{VIN}/state", headers=centre)).status_code == 200

            await ok("POST", f"/v1/service/bookings/{booking_id}/check-in", centre)
            await timings.step(
                "checked in", inbox.wait_for("booking.checked_in", booking_id=booking_id)
            )
            work_order = await ok(
                "POST",
                f"/v1/service/bookings/{booking_id}/work-order",
                centre,
                json={"complaint": "Engine runs rough, check light on", "alert_ids": [alert_id]},
            )
            labour = {
                "kind": "labour",
                "code": "IGN-COIL",
                "description": "Replace ignition coil, cylinder 1",
                "quantity": "0.5",
                "unit_price_cents": 12000,
            }
            await ok(
                "POST", f"/v1/service/work-orders/{work_order['id']}/lines", centre, json=labour
            )
            closed = await ok("POST", f"/v1/service/work-orders/{work_order['id']}/close", centre)
            assert closed["resolved_alert_ids"] == [alert_id]

            await timings.step(
                "work order closed",
                inbox.wait_for("work_order.closed", work_order_id=work_order["id"]),
            )
            await timings.step(
                "completed", inbox.wait_for("booking.completed", booking_id=booking_id)
            )
            resolved = await timings.step(
                "alert resolved", inbox.wait_for("alert.resolved", alert_id=alert_id)
            )
            assert resolved["data"]["resolution"] == "work_order"
            assert resolved["data"]["work_order_id"] == work_order["id"]

            async def all_delivered() -> bool:
                listing = await ok("GET", "/v1/me/notifications?limit=100", me)
                app = [d for n in listing["data"] for d in n["deliveries"] if d["channel"] == "app"]
                return len(app) == len(inbox.events) and {d["state"] for d in app} == {"delivered"}

            # The stream marks what it wrote as delivered to the app.
            await timings.step(
                "marked delivered", asyncio.wait_for(until(all_delivered), STEP_TIMEOUT_S)
            )
        finally:
            stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream

        alerts = await ok("GET", f"/v1/vehicles/{VIN}/alerts", me)
        assert [(a["status"], a["resolution"]) for a in alerts["data"]] == [
            ("resolved", "work_order")
        ]
        booking = await ok("GET", f"/v1/me/bookings/{booking_id}", me)
        assert booking["status"] == "completed"
        # Each step reached the app once, in the order it happened.
        journey = [
            "alert.opened",
            "booking.suggested",
            "booking.confirmed",
            "booking.checked_in",
            "work_order.closed",
        ]
        topics = inbox.topics()
        assert [t for t in topics if t in journey] == journey, topics
        assert topics.count("alert.resolved") == topics.count("booking.completed") == 1, topics
        # The inbox holds exactly what the stream showed.
        listing = await ok("GET", "/v1/me/notifications?limit=100", me)
        assert sorted(n["id"] for n in listing["data"]) == sorted(e["id"] for e in inbox.events)
    total = round(time.monotonic() - timings.started, 1)
    print(f"service journey: {timings.steps}, {total} s in all (stack start and stop included)")
