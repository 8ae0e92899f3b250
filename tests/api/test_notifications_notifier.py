"""The notifier against PostgreSQL: each topic becomes the right notification for the vehicle's
current owner, in their language, over their channels, honouring quiet hours; exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from api.notifications.store import CHANNEL
from tests.api.customer_platform import VIN_A, VIN_B, FakeClock, Platform, running_platform
from tests.api.test_notifications_helpers import (
    alert_payload,
    booking_payload,
    consumer,
    deliveries_of,
    emit,
    later,
    notifications_of,
    owner,
    work_order_payload,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


# topic, payload builder, expected title (en), category, expected data links
CASES: list[tuple[str, str, dict[str, Any], str, str, dict[str, Any]]] = [
    (
        "alert.opened",
        "alert:7",
        alert_payload(7, VIN_A),
        "Brake pads wearing out (front left)",
        "informational",
        {"alert_id": 7, "severity": "warning"},
    ),
    (
        "alert.updated",
        "alert:7",
        alert_payload(7, VIN_A, severity="critical", escalated=True),
        "More urgent now: Brake pads wearing out (front left)",
        "service_critical",
        {"alert_id": 7, "severity": "critical"},
    ),
    (
        "booking.suggested",
        "booking:3",
        booking_payload(3, VIN_A, "requested"),
        "Service appointment suggested",
        "informational",
        {"booking_id": 3, "alert_id": 7},
    ),
    (
        "booking.confirmed",
        "booking:3",
        booking_payload(3, VIN_A, "confirmed"),
        "Service appointment confirmed",
        "informational",
        {"booking_id": 3, "status": "confirmed"},
    ),
    (
        "booking.checked_in",
        "booking:3",
        booking_payload(3, VIN_A, "checked_in"),
        "Vehicle checked in",
        "informational",
        {"booking_id": 3},
    ),
    (
        "booking.completed",
        "booking:3",
        booking_payload(3, VIN_A, "completed"),
        "Service completed",
        "informational",
        {"booking_id": 3},
    ),
    (
        "booking.cancelled",
        "booking:3",
        booking_payload(3, VIN_A, "cancelled"),
        "Service appointment cancelled",
        "informational",
        {"booking_id": 3},
    ),
    (
        "booking.no_show",
        "booking:3",
        booking_payload(3, VIN_A, "no_show"),
        "Missed service appointment",
        "informational",
        {"booking_id": 3},
    ),
    (
        "work_order.closed",
        "work_order:5",
        work_order_payload(5, VIN_A),
        "Work order closed",
        "informational",
        {"work_order_id": 5, "booking_id": 3, "alert_ids": [7]},
    ),
]


@pytest.mark.parametrize(
    ("topic", "subject", "payload", "title", "category", "links"),
    CASES,
    ids=[c[0] for c in CASES],
)
async def test_each_topic_becomes_a_notification_for_the_owner(
    platform: Platform,
    topic: str,
    subject: str,
    payload: dict[str, Any],
    title: str,
    category: str,
    links: dict[str, Any],
) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A, timezone="Europe/Berlin")
    await owner(platform, "bob@example.com", VIN_B)
    outbox, handler = consumer(platform.pool, platform.clock)
    await emit(platform.pool, topic, subject, payload, occurred_at=later(platform.clock), vin=VIN_A)
    assert await outbox.process_pending() == 1
    [notification] = await notifications_of(platform.pool, ada.id)
    assert (notification["topic"], notification["subject"]) == (topic, subject)
    assert notification["title"] == title
    assert notification["category"] == category
    assert notification["vin"] == VIN_A
    assert notification["language"] == "en"
    data = await platform.pool.fetchval(
        "SELECT data FROM notifications WHERE id = $1", notification["id"]
    )
    assert links.items() <= json.loads(data).items()
    assert handler.stats.created == 1
    # Nobody else hears of it.
    assert await platform.pool.fetchval("SELECT count(*) FROM notifications") == 1


async def test_bodies_carry_the_specifics_in_the_customers_zone(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A, timezone="Europe/Berlin")
    outbox, _ = consumer(platform.pool, platform.clock)
    at = later(platform.clock)
    await emit(platform.pool, "alert.opened", "alert:7", alert_payload(7, VIN_A), occurred_at=at)
    await emit(
        platform.pool,
        "booking.confirmed",
        "booking:3",
        booking_payload(3, VIN_A, "confirmed"),
        occurred_at=at,
        vin=VIN_A,
    )
    await outbox.process_pending()
    alert, booking = await notifications_of(platform.pool, ada.id)
    assert alert["body"] == (
        "Replace the front brake pads within two weeks. "
        "Expected to need attention by Fri 4 Dec 2026, 10:30 CET."
    )
    assert booking["body"] == (
        "Your appointment on Tue 24 Nov 2026, 09:00 CET at Autohaus Mitte is confirmed."
    )


async def test_german_customers_get_german_texts(platform: Platform) -> None:
    ute = await owner(platform, "ute@example.de", VIN_A, language="de-DE", timezone="Europe/Berlin")
    outbox, _ = consumer(platform.pool, platform.clock)
    at = later(platform.clock)
    critical = alert_payload(7, VIN_A, severity="critical", predicted_failure_at=None)
    await emit(platform.pool, "alert.opened", "alert:7", critical, occurred_at=at)
    await emit(
        platform.pool,
        "booking.no_show",
        "booking:3",
        booking_payload(3, VIN_A, "no_show"),
        occurred_at=at,
        vin=VIN_A,
    )
    await outbox.process_pending()
    alert, booking = await notifications_of(platform.pool, ute.id)
    assert alert["language"] == "de"
    assert alert["title"] == "Dringend: Bremsbeläge verschlissen (vorne links)"
    # The engines' English advice is not mixed into a German text.
    assert alert["body"] == "Bitte halten Sie sicher an und wenden Sie sich an eine Werkstatt."
    assert booking["title"] == "Werkstatttermin verpasst"
    assert booking["body"].startswith("Ihr Termin am Di. 24.11.2026, 09:00 CET bei Autohaus Mitte")


async def test_after_a_transfer_the_new_owner_is_told_not_the_previous_one(
    platform: Platform,
) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    before_transfer = later(platform.clock)
    platform.clock.advance(timedelta(minutes=5))
    bob = await owner(platform, "bob@example.com", VIN_A)  # transfers the car to Bob
    outbox, handler = consumer(platform.pool, platform.clock)
    # Raised from data of Ada's time, handled after the transfer: Ada no longer owns the car
    # and Bob must not learn about Ada's time -- nobody is told.
    await emit(
        platform.pool,
        "alert.opened",
        "alert:1",
        alert_payload(1, VIN_A),
        occurred_at=before_transfer,
    )
    await emit(
        platform.pool,
        "alert.opened",
        "alert:2",
        alert_payload(2, VIN_A),
        occurred_at=later(platform.clock),
    )
    await outbox.process_pending()
    assert await notifications_of(platform.pool, ada.id) == []
    [told] = await notifications_of(platform.pool, bob.id)
    assert told["subject"] == "alert:2"
    assert handler.stats.no_recipient == 1


async def test_an_event_naming_its_customer_goes_to_that_customer(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    bob = await owner(platform, "bob@example.com", VIN_B)
    outbox, _ = consumer(platform.pool, platform.clock)
    # Bob booked a visit for Ada's car (say, as its driver): the booking is Bob's.
    await emit(
        platform.pool,
        "booking.confirmed",
        "booking:9",
        booking_payload(9, VIN_A, "confirmed", customer_id=str(bob.id)),
        occurred_at=later(platform.clock),
        vin=VIN_A,
        customer_id=bob.id,
    )
    await outbox.process_pending()
    assert await notifications_of(platform.pool, ada.id) == []
    assert len(await notifications_of(platform.pool, bob.id)) == 1


async def test_the_same_event_twice_is_one_notification(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    outbox, handler = consumer(platform.pool, platform.clock)
    at = later(platform.clock)
    # A producer that appended the same change twice ...
    for _ in range(2):
        await emit(
            platform.pool, "alert.opened", "alert:7", alert_payload(7, VIN_A), occurred_at=at
        )
    assert await outbox.process_pending() == 2
    # ... and the whole outbox read again (a consumer whose cursor was lost).
    await platform.pool.execute("DELETE FROM outbox_cursors WHERE consumer = 'notifier'")
    assert await outbox.process_pending() == 2
    notifications = await notifications_of(platform.pool, ada.id)
    assert len(notifications) == 1
    assert len(await deliveries_of(platform.pool, notifications[0]["id"])) == 4
    assert (handler.stats.created, handler.stats.duplicates) == (1, 3)


async def test_alert_updates_notify_only_when_the_severity_rises(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    outbox, handler = consumer(platform.pool, platform.clock)
    at = later(platform.clock)

    async def update(**changes: Any) -> None:
        await emit(
            platform.pool,
            "alert.updated",
            "alert:7",
            alert_payload(7, VIN_A, **changes),
            occurred_at=at,
        )

    await emit(
        platform.pool,
        "alert.opened",
        "alert:7",
        alert_payload(7, VIN_A, severity="info"),
        occurred_at=at,
    )
    await update(severity="info", confidence=0.9, escalated=False)  # the prediction moved
    await update(severity="warning")  # no flag: compared with what Ada was told (info)
    await update(severity="warning")  # told already
    await update(severity="info")  # went down: nothing to tell
    await update(severity="critical", escalated=True)
    await update(severity="critical", escalated=True)  # a duplicate
    await outbox.process_pending()
    titles = [n["title"] for n in await notifications_of(platform.pool, ada.id)]
    assert titles == [
        "Brake pads wearing out (front left)",
        "More urgent now: Brake pads wearing out (front left)",
        "More urgent now: Brake pads wearing out (front left)",
    ]
    severities = await platform.pool.fetch(
        "SELECT data->>'severity' AS s, category FROM notifications ORDER BY id"
    )
    assert [(r["s"], r["category"]) for r in severities] == [
        ("info", "informational"),
        ("warning", "informational"),
        ("critical", "service_critical"),
    ]
    assert handler.stats.nothing_to_tell == 4


async def test_a_resolution_is_told_only_to_who_heard_of_the_alert(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    outbox, _ = consumer(platform.pool, platform.clock)
    at = later(platform.clock)
    await emit(platform.pool, "alert.opened", "alert:7", alert_payload(7, VIN_A), occurred_at=at)
    resolved = {"status": "resolved", "resolution": "work_order", "work_order_id": 5}
    await emit(
        platform.pool,
        "alert.resolved",
        "alert:7",
        alert_payload(7, VIN_A, **resolved),
        occurred_at=at,
    )
    # An alert Ada never heard of (say, opened before the notifier ran).
    await emit(
        platform.pool,
        "alert.resolved",
        "alert:8",
        alert_payload(8, VIN_A, **resolved),
        occurred_at=at,
    )
    await outbox.process_pending()
    notifications = await notifications_of(platform.pool, ada.id)
    assert [(n["subject"], n["title"], n["body"]) for n in notifications] == [
        ("alert:7", "Brake pads wearing out (front left)", notifications[0]["body"]),
        ("alert:7", "Resolved: Brake pads wearing out (front left)", "Fixed at the workshop."),
    ]


async def test_channels_follow_the_preferences(platform: Platform) -> None:
    ada = await owner(
        platform, "ada@example.com", VIN_A, preferred_channels=["email", "sms", "in_car"]
    )
    outbox, _ = consumer(platform.pool, platform.clock)
    await emit(
        platform.pool,
        "alert.opened",
        "alert:7",
        alert_payload(7, VIN_A),
        occurred_at=later(platform.clock),
    )
    await outbox.process_pending()
    [notification] = await notifications_of(platform.pool, ada.id)
    deliveries = await deliveries_of(platform.pool, notification["id"])
    states = {c: (d["state"], d["reason"]) for c, d in deliveries.items()}
    assert states == {
        "app": ("sent", None),  # the inbox always has it
        "email": ("queued", None),
        "in_car": ("queued", None),
        "sms": ("suppressed", "no_address"),  # no phone number on the profile
    }
    assert deliveries["email"]["next_attempt_at"] == platform.clock.now()


async def test_quiet_hours_in_the_customers_zone_defer_all_but_safety(pool: asyncpg.Pool) -> None:
    async with running_platform(pool) as platform:
        ada = await owner(
            platform,
            "ada@example.com",
            VIN_A,
            preferred_channels=["app", "in_car", "email"],
            timezone="America/New_York",
            quiet_hours={"start": "22:00", "end": "07:00"},
        )
        # 01:30 in New York (EST, UTC-5), past midnight: quiet until 07:00 New York, 12:00 UTC.
        night = FakeClock(int(datetime(2026, 11, 24, 6, 30, tzinfo=UTC).timestamp() * 1000))
        outbox, _ = consumer(pool, night)
        at = later(platform.clock)
        await emit(pool, "alert.opened", "alert:7", alert_payload(7, VIN_A), occurred_at=at)
        critical = alert_payload(8, VIN_A, type="tire_pressure_loss", severity="critical")
        await emit(pool, "alert.opened", "alert:8", critical, occurred_at=at)
        await outbox.process_pending()
        informational, safety = await notifications_of(pool, ada.id)
        end_of_night = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        deferred = await deliveries_of(pool, informational["id"])
        for channel in ("in_car", "email"):
            assert deferred[channel]["state"] == "queued"
            assert deferred[channel]["reason"] == "quiet_hours"
            assert deferred[channel]["next_attempt_at"] == end_of_night
        assert deferred["app"]["state"] == "sent"  # the inbox entry exists at once
        urgent = await deliveries_of(pool, safety["id"])
        assert safety["category"] == "service_critical"
        for channel in ("in_car", "email"):
            assert urgent[channel]["state"] == "queued"
            assert urgent[channel]["reason"] is None
            assert urgent[channel]["next_attempt_at"] == night.now()


async def test_a_new_notification_is_announced_at_commit(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    heard: asyncio.Queue[str] = asyncio.Queue()
    async with platform.pool.acquire() as listener:

        def on_notify(*args: Any) -> None:
            heard.put_nowait(args[3])

        await listener.add_listener(CHANNEL, on_notify)
        outbox, _ = consumer(platform.pool, platform.clock)
        await emit(
            platform.pool,
            "alert.opened",
            "alert:7",
            alert_payload(7, VIN_A),
            occurred_at=later(platform.clock),
        )
        await outbox.process_pending()
        payload = await asyncio.wait_for(heard.get(), 5)
        await listener.remove_listener(CHANNEL, on_notify)
    [notification] = await notifications_of(platform.pool, ada.id)
    assert payload == f"{ada.id}:{notification['id']}"


async def test_unknown_topics_are_skipped_and_bad_payloads_recorded(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    outbox, handler = consumer(platform.pool, platform.clock)
    at = later(platform.clock)
    await emit(
        platform.pool, "alert.acknowledged", "alert:7", alert_payload(7, VIN_A), occurred_at=at
    )
    await emit(platform.pool, "alert.opened", "alert:8", {"id": "eight"}, occurred_at=at, vin=VIN_A)
    await emit(platform.pool, "alert.opened", "alert:9", alert_payload(9, VIN_A), occurred_at=at)
    assert await outbox.process_pending() == 3
    assert [n["subject"] for n in await notifications_of(platform.pool, ada.id)] == ["alert:9"]
    assert handler.stats.unknown_topic == 1
    failure = await platform.pool.fetchrow("SELECT consumer, error FROM outbox_failures")
    assert failure["consumer"] == "notifier"
    assert failure["error"].startswith("BadPayloadError: alert.opened")
