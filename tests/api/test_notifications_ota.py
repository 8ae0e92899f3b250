"""The notifier's OTA templates against PostgreSQL, fed events shaped like the producers'
(``ota.rollout_offers``, ``ota.update_results``): asked or informed, in the owner's language
and channels, once per attempt; results only to an owner who heard of the offer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.api.customer_platform import VIN_A, Platform, running_platform
from tests.api.test_notifications_helpers import (
    consumer,
    deliveries_of,
    emit,
    later,
    notifications_of,
    owner,
)

pytestmark = pytest.mark.integration

CAMPAIGN = "0b5a3a52-6d3e-4c1a-9a55-3f1c2f0e7d10"
SUBJECT = f"ota_update:{CAMPAIGN}:{VIN_A}"


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        yield running


def offer_payload(*, requires_consent: bool = True, **changes: Any) -> dict[str, Any]:
    """As ``ota.rollout_offers._offer`` appends it."""
    payload: dict[str, Any] = {
        "campaign_id": CAMPAIGN,
        "campaign": "TCU 2.1.0",
        "vin": VIN_A,
        "target": "tcu-fw-2.1.0",
        "version": "2.1.0",
        "purpose": "Security fixes for the telematics unit",
        "duration_min": 15,
        "functions_unavailable": ["remote services", "charging timer"],
        "requires_consent": requires_consent,
        "attempt": 1,
        "accept_path": f"/v1/me/vehicles/{VIN_A}/ota/{CAMPAIGN}/accept",
        "decline_path": f"/v1/me/vehicles/{VIN_A}/ota/{CAMPAIGN}/decline",
    }
    return payload | changes


def result_payload(status: str, **changes: Any) -> dict[str, Any]:
    """As ``ota.update_results.append_update_result`` appends it."""
    payload: dict[str, Any] = {
        "campaign_id": CAMPAIGN,
        "campaign": "TCU 2.1.0",
        "vin": VIN_A,
        "target": "tcu-fw-2.1.0",
        "version": "2.1.0",
        "status": status,
        "attempt": 1,
        "code": None,
    }
    return payload | changes


async def test_a_german_owner_is_asked_in_german_over_their_channels(
    platform: Platform,
) -> None:
    ute = await owner(
        platform, "ute@example.de", VIN_A, language="de-AT", preferred_channels=["app", "in_car"]
    )
    outbox, _ = consumer(platform.pool, platform.clock)
    await emit(
        platform.pool,
        "ota.offer",
        SUBJECT,
        offer_payload(),
        occurred_at=later(platform.clock),
        vin=VIN_A,
        customer_id=ute.id,
    )
    await outbox.process_pending()
    [notification] = await notifications_of(platform.pool, ute.id)
    assert notification["language"] == "de"
    assert notification["title"] == "Software-Update wartet auf Ihre Zustimmung"
    assert notification["body"] == (
        "Security fixes for the telematics unit. "
        "Die Installation der Version 2.1.0 dauert etwa 15 Min. "
        "Währenddessen nicht verfügbar: remote services, charging timer. "
        "Nehmen Sie das Update in der App an oder lehnen Sie es ab."
    )
    deliveries = await deliveries_of(platform.pool, notification["id"])
    assert deliveries["app"]["state"] == "sent"
    assert deliveries["in_car"]["state"] == "queued"  # the car can show it to the driver
    assert deliveries["email"]["reason"] == "channel_not_preferred"


async def test_with_automatic_installs_the_owner_is_informed_not_asked(
    platform: Platform,
) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    outbox, _ = consumer(platform.pool, platform.clock)
    payload = offer_payload(requires_consent=False, functions_unavailable=[], purpose="Fixes!")
    await emit(
        platform.pool,
        "ota.offer",
        SUBJECT,
        payload,
        occurred_at=later(platform.clock),
        vin=VIN_A,
        customer_id=ada.id,
    )
    await outbox.process_pending()
    [notification] = await notifications_of(platform.pool, ada.id)
    assert notification["title"] == "Software update starting"
    assert notification["body"] == (
        "Fixes! Installing version 2.1.0 takes about 15 min. "
        "It installs automatically, as you chose in your settings."
    )
    data = json.loads(notification["data"])
    assert data["requires_consent"] is False
    assert data["accept_path"] is None and data["decline_path"] is None


async def test_one_notification_per_attempt(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    outbox, handler = consumer(platform.pool, platform.clock)
    at = later(platform.clock)
    for payload in (offer_payload(), offer_payload(), offer_payload(attempt=2)):
        await emit(platform.pool, "ota.offer", SUBJECT, payload, occurred_at=at, customer_id=ada.id)
    # An event from before attempts were recorded is the first attempt.
    legacy = {k: v for k, v in offer_payload().items() if k != "attempt"}
    await emit(platform.pool, "ota.offer", SUBJECT, legacy, occurred_at=at, customer_id=ada.id)
    assert await outbox.process_pending() == 4
    told = await notifications_of(platform.pool, ada.id)
    assert [json.loads(n["data"])["attempt"] for n in told] == [1, 2]
    assert (handler.stats.created, handler.stats.duplicates) == (2, 2)


async def test_a_result_is_told_only_to_an_owner_who_heard_of_the_offer(
    platform: Platform,
) -> None:
    ute = await owner(platform, "ute@example.de", VIN_A, language="de")
    outbox, handler = consumer(platform.pool, platform.clock)
    at = later(platform.clock)

    async def result(status: str, **changes: Any) -> None:
        payload = result_payload(status, **changes)
        await emit(
            platform.pool, "ota.update_result", SUBJECT, payload, occurred_at=at, customer_id=ute.id
        )

    await result("installed")  # no offer told: nothing to say
    await emit(
        platform.pool, "ota.offer", SUBJECT, offer_payload(), occurred_at=at, customer_id=ute.id
    )
    await result("rolled_back", code="install_failed")
    await result("rolled_back", code="install_failed")  # a duplicate
    await outbox.process_pending()
    titles = [(n["topic"], n["title"]) for n in await notifications_of(platform.pool, ute.id)]
    assert titles == [
        ("ota.offer", "Software-Update wartet auf Ihre Zustimmung"),
        ("ota.update_result", "Software-Update nicht installiert"),
    ]
    last = (await notifications_of(platform.pool, ute.id))[-1]
    assert last["body"].startswith("Das Update auf Version 2.1.0 ließ sich nicht installieren")
    assert json.loads(last["data"])["code"] == "install_failed"
    assert (handler.stats.nothing_to_tell, handler.stats.duplicates) == (1, 1)
