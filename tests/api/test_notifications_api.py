"""The inbox routes: list (newest first, paged, unread), one, mark read; another customer's
notification looks unknown; erasure takes the notifications with the customer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from api.notifications.model import Channel, DeliveryState
from api.notifications.store import recent_notifications
from tests.api.customer_platform import VIN_A, VIN_B, Platform, running_platform
from tests.api.test_notifications_helpers import (
    Owner,
    alert_payload,
    booking_payload,
    consumer,
    emit,
    later,
    owner,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


async def three_notifications(platform: Platform) -> Owner:
    ada = await owner(platform, "ada@example.com", VIN_A, preferred_channels=["app", "email"])
    outbox, _ = consumer(platform.pool, platform.clock)
    for n, topic in enumerate(("booking.suggested", "booking.confirmed", "booking.completed")):
        status = topic.split(".")[1]
        await emit(
            platform.pool,
            topic,
            "booking:3",
            booking_payload(3, VIN_A, status),
            occurred_at=later(platform.clock),
            vin=VIN_A,
        )
        platform.clock.advance(timedelta(seconds=n + 1))
        await outbox.process_pending()
    return ada


async def test_the_inbox_lists_newest_first_with_each_channels_state(platform: Platform) -> None:
    ada = await three_notifications(platform)
    response = await platform.http.get("/v1/me/notifications", headers=ada.headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["count"] == 3
    assert [n["topic"] for n in body["data"]] == [
        "booking.completed",
        "booking.confirmed",
        "booking.suggested",
    ]
    newest = body["data"][0]
    assert newest["title"] == "Service completed"
    assert newest["data"]["booking_id"] == 3
    assert newest["read_at"] is None
    states = {d["channel"]: (d["state"], d["reason"]) for d in newest["deliveries"]}
    assert states == {
        "app": ("sent", None),
        "email": ("queued", None),
        "in_car": ("suppressed", "channel_not_preferred"),
        "sms": ("suppressed", "channel_not_preferred"),
    }
    page = await platform.http.get("/v1/me/notifications?limit=1&offset=1", headers=ada.headers)
    assert [n["topic"] for n in page.json()["data"]] == ["booking.confirmed"]
    assert page.json()["count"] == 3


async def test_reading_marks_the_app_delivery_read_once(platform: Platform) -> None:
    ada = await three_notifications(platform)
    listing = (await platform.http.get("/v1/me/notifications", headers=ada.headers)).json()
    target = listing["data"][1]["id"]
    read_at = platform.clock.now()
    first = await platform.http.post(f"/v1/me/notifications/{target}/read", headers=ada.headers)
    assert first.status_code == 200
    assert first.json()["read_at"] is not None
    app = next(d for d in first.json()["deliveries"] if d["channel"] == "app")
    assert app["state"] == "read"
    platform.clock.advance(timedelta(minutes=3))
    again = await platform.http.post(f"/v1/me/notifications/{target}/read", headers=ada.headers)
    assert again.json()["read_at"] == first.json()["read_at"]  # the first read time is kept
    assert datetime.fromisoformat(first.json()["read_at"]) == read_at
    unread = (
        await platform.http.get("/v1/me/notifications?unread=true", headers=ada.headers)
    ).json()
    assert unread["count"] == 2
    assert target not in [n["id"] for n in unread["data"]]
    one = await platform.http.get(f"/v1/me/notifications/{target}", headers=ada.headers)
    assert one.status_code == 200 and one.json()["read_at"] == first.json()["read_at"]


async def test_another_customers_notification_is_not_found(platform: Platform) -> None:
    ada = await three_notifications(platform)
    bob = await owner(platform, "bob@example.com", VIN_B)
    target = (await platform.pool.fetchval("SELECT max(id) FROM notifications")) or 0
    for method, path in (("POST", f"/{target}/read"), ("GET", f"/{target}")):
        foreign = await platform.http.request(
            method, f"/v1/me/notifications{path}", headers=bob.headers
        )
        unknown = await platform.http.request(
            method,
            f"/v1/me/notifications{path.replace(str(target), '999999')}",
            headers=bob.headers,
        )
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json()["code"] == unknown.json()["code"] == "notification_not_found"
    listing = (await platform.http.get("/v1/me/notifications", headers=bob.headers)).json()
    assert listing == {"data": [], "count": 0}
    # Ada's stays unread.
    assert (
        await platform.pool.fetchval("SELECT read_at FROM notifications WHERE id = $1", target)
        is None
    )
    assert ada.id != bob.id


async def test_recent_notifications_for_the_overview(platform: Platform) -> None:
    ada = await three_notifications(platform)
    async with platform.pool.acquire() as conn:
        recent = await recent_notifications(conn, ada.id, 2)
    assert [r.topic for r in recent] == ["booking.completed", "booking.confirmed"]
    app = recent[0].delivery(Channel.APP)
    assert app is not None and app.state is DeliveryState.SENT


async def test_erasure_takes_the_notifications_and_deliveries_along(platform: Platform) -> None:
    ada = await three_notifications(platform)
    outbox, _ = consumer(platform.pool, platform.clock)
    await emit(
        platform.pool,
        "alert.opened",
        "alert:7",
        alert_payload(7, VIN_A),
        occurred_at=later(platform.clock),
    )
    await outbox.process_pending()
    assert await platform.pool.fetchval("SELECT count(*) FROM notification_deliveries") == 16
    assert (await platform.http.delete("/v1/me", headers=ada.headers)).status_code == 200
    assert await platform.pool.fetchval("SELECT count(*) FROM notifications") == 0
    assert await platform.pool.fetchval("SELECT count(*) FROM notification_deliveries") == 0
