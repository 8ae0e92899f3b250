"""In-car notifications acknowledged by the car (issue 7): the delivery loop sends a ``notify``
command, the simulated car shows it and answers ``command_ack`` on its events topic, ingest
stores the event and the delivery becomes ``delivered``. End to end over the real broker, ingest
and database; and the acknowledgement's rules against the database directly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

import asyncpg
import pytest

from api.notifications.adapters import OutgoingMessage
from api.notifications.delivery import DeliveryLoop
from api.notifications.in_car import InCarAdapter
from api.notifications.model import Channel
from api.vehicle_registry import VehicleRegistry, VehicleSpec
from ingest.events import VehicleEvent
from ingest.store import Batch, TelemetryStore
from protocol.catalogue import Powertrain
from protocol.clock import SYSTEM_CLOCK
from protocol.vin import Vin
from simulator.car import CarLink
from simulator.onboard import Onboard, OnboardOptions
from tests.ota.command_stack import command_stack

VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"


async def _customer(pool: asyncpg.Pool, email: str) -> UUID:
    customer: UUID = await pool.fetchval(
        "INSERT INTO customers (email, preferred_channels) VALUES ($1, '{app,in_car}')"
        " RETURNING id",
        email,
    )
    return customer


async def _in_car_delivery(pool: asyncpg.Pool, customer: UUID, vin: str, title: str) -> int:
    """A notification about ``vin`` and its queued in-car delivery, as the notifier writes."""
    notification = await pool.fetchval(
        "INSERT INTO notifications (customer_id, vin, topic, subject, dedupe_key, category,"
        " language, title, body, created_at) VALUES ($1, $2, 'alert.opened', 'alert:1', $3,"
        " 'informational', 'en', $4, 'Book a visit.', now()) RETURNING id",
        customer,
        vin,
        f"alert.opened|{title}",
        title,
    )
    delivery: int = await pool.fetchval(
        "INSERT INTO notification_deliveries (notification_id, channel, state, next_attempt_at,"
        " created_at) VALUES ($1, 'in_car', 'queued', now(), now()) RETURNING id",
        notification,
    )
    return delivery


async def _delivery(pool: asyncpg.Pool, delivery: int) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT state, sent_at, delivered_at, next_attempt_at FROM notification_deliveries"
        " WHERE id = $1",
        delivery,
    )
    assert row is not None
    return row


async def _ack(pool: asyncpg.Pool, vin: str, seq: int, command: str) -> None:
    """What ingest stores for the car's ``command_ack`` event."""
    ts = int(datetime.now(UTC).timestamp() * 1000)
    body = json.dumps({"seq": seq, "ts": ts, "type": "command_ack", "id": command})
    batch = Batch()
    batch.events.append((vin, VehicleEvent(seq, ts, "command_ack", None, None, body)))
    await TelemetryStore(pool).write(batch)


async def _registered(pool: asyncpg.Pool, *vins: str) -> None:
    for vin in vins:
        await VehicleRegistry(pool).register(
            VehicleSpec(Vin(vin), "VW", "ID.3", 2024, Powertrain.BEV)
        )


T = TypeVar("T")


async def _now(value: bool) -> bool:
    return value


async def _delivered(pool: asyncpg.Pool, delivery: int) -> asyncpg.Record | None:
    row = await _delivery(pool, delivery)
    return row if row["state"] == "delivered" else None


async def _until(probe: Callable[[], Awaitable[T | None]], seconds: float) -> T:
    """The first truthy answer of ``probe``, polled until ``seconds`` pass."""
    async with asyncio.timeout(seconds):
        while True:
            if answer := await probe():
                return answer
            await asyncio.sleep(0.02)


@pytest.mark.integration
async def test_a_notification_shown_in_the_car_becomes_delivered(pool: asyncpg.Pool) -> None:
    async with command_stack(pool) as stack:
        (profile,) = await stack.vehicles(1)
        vin = profile.vin
        link = CarLink(
            vin, stack.passwords[vin], stack.endpoint, SYSTEM_CLOCK, publish_interval_s=0.1
        )
        car = Onboard(vin, SYSTEM_CLOCK, link, OnboardOptions())
        link.handle_commands(car.dispatcher)
        stack.start(link.run)
        await _until(lambda: _now(link.receiving_commands), 20)

        delivery = await _in_car_delivery(
            pool, await _customer(pool, "ada@example.com"), vin, "Tyre pressure loss"
        )
        loop = DeliveryLoop(
            pool, {Channel.IN_CAR: InCarAdapter(stack.commander, publish_timeout_s=5)}
        )
        try:
            assert await loop.deliver_due() == 1
        finally:
            await loop.aclose()
        row = await _until(lambda: _delivered(pool, delivery), 10)
        assert row["sent_at"] is not None and row["delivered_at"] is not None
        assert row["next_attempt_at"] is None
        (shown,) = car.inbox.items()
        assert (shown.command_id, shown.title) == (f"notify-{delivery}", "Tyre pressure loss")
        stored = await pool.fetchval(
            "SELECT body ->> 'id' FROM vehicle_events WHERE vin = $1 AND type = 'command_ack'",
            vin,
        )
        assert stored == f"notify-{delivery}"


async def test_only_the_car_the_notification_is_about_can_acknowledge_it(
    pool: asyncpg.Pool,
) -> None:
    await _registered(pool, VIN_A, VIN_B)
    customer = await _customer(pool, "ada@example.com")
    delivery = await _in_car_delivery(pool, customer, VIN_A, "Brake pads")
    await pool.execute(
        "UPDATE notification_deliveries SET state = 'sent', sent_at = now(),"
        " next_attempt_at = NULL WHERE id = $1",
        delivery,
    )
    await _ack(pool, VIN_B, 1, f"notify-{delivery}")  # not B's notification
    await _ack(pool, VIN_A, 2, "notify-999999")  # no such delivery
    await _ack(pool, VIN_A, 3, "notify-99999999999999999999")  # beyond bigint: ignored
    await _ack(pool, VIN_A, 4, "something-else")
    assert (await _delivery(pool, delivery))["state"] == "sent"
    await _ack(pool, VIN_A, 5, f"notify-{delivery}")
    assert (await _delivery(pool, delivery))["state"] == "delivered"
    stored = await pool.fetchval("SELECT count(*) FROM vehicle_events WHERE type = 'command_ack'")
    assert stored == 5  # every event is kept, whatever it acknowledged


async def test_a_car_faster_than_the_pubacks_leaves_the_delivery_delivered(
    pool: asyncpg.Pool,
) -> None:
    """The ack can be stored before the delivery loop records ``sent``: it stays delivered."""
    await _registered(pool, VIN_A)
    delivery = await _in_car_delivery(
        pool, await _customer(pool, "ada@example.com"), VIN_A, "Service due"
    )

    class CarAcksBeforePuback:
        channel = Channel.IN_CAR

        async def send(self, message: OutgoingMessage) -> None:
            await _ack(pool, VIN_A, 1, f"notify-{message.delivery_id}")

        async def aclose(self) -> None:
            return None

    assert await DeliveryLoop(pool, {Channel.IN_CAR: CarAcksBeforePuback()}).deliver_due() == 1
    row = await _delivery(pool, delivery)
    assert row["state"] == "delivered" and row["sent_at"] is not None
    assert row["next_attempt_at"] is None
