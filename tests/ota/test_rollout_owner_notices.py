"""The owner's side of a rollout, from the scheduler's offer to the customer app: an offer that
needs the owner's consent appends one ``ota.offer`` outbox event in the offer's transaction
(commands resent to the car add none), the notifier turns it into one notification in the
owner's inbox with the links to accept or decline, and the car's report of how the update
ended (``ota.update_result``) is told to the owner who heard of the offer, once per attempt."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from ota.campaigns.consent import owner_decision, retry
from ota.campaigns.creation import create_campaign
from ota.rollout_scheduler import RolloutScheduler
from ota.rollout_settings import RolloutSettings
from ota.status_ingest import StatusIngest
from tests.api.customer_platform import Platform, running_platform
from tests.api.test_notifications_helpers import consumer, notifications_of, owner
from tests.ota.conftest import OtaFixture
from tests.ota.test_campaign_world import (
    RecordingSink,
    ReportingCar,
    now,
    parked,
    publish,
    register,
    spec,
    vins,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def platform(pool: asyncpg.Pool, ota: OtaFixture) -> AsyncIterator[Platform]:
    """The API on the test database, with a published image for the campaigns."""
    await publish(ota, "2.1.0", counter=3)
    async with running_platform(pool) as running:
        yield running


def scheduler(pool: asyncpg.Pool, sink: RecordingSink) -> RolloutScheduler:
    return RolloutScheduler(pool, sink, settings=RolloutSettings(resend_after_s=60))


async def outbox(pool: asyncpg.Pool, topic: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT subject, vin, customer_id, payload::text AS payload FROM outbox"
        " WHERE topic = $1 ORDER BY id",
        topic,
    )
    return rows


async def notify(platform: Platform) -> None:
    """The notifier, as the runtime runs it, takes whatever the outbox holds."""
    await consumer(platform.pool, platform.clock)[0].process_pending()


async def test_a_consent_offer_reaches_the_owners_app_once_and_its_link_accepts_it(
    platform: Platform,
) -> None:
    pool = platform.pool
    (vin,) = vins(1)
    await register(pool, vin)
    ada = await owner(platform, "ada@example.com", vin, timezone="Europe/Berlin")
    bob = await owner(platform, "bob@example.com")
    t = now()
    await parked(pool, [vin], t)
    campaign = await create_campaign(pool, spec(), t)
    sink = RecordingSink()
    tick = scheduler(pool, sink).tick
    assert (await tick(t)).offered == 1
    assert [c.payload["approved"] for c in sink.to(vin)] == [False]

    [event] = await outbox(pool, "ota.offer")
    assert (event["subject"], event["vin"], event["customer_id"]) == (
        f"ota_update:{campaign.id}:{vin}",
        vin,
        ada.id,
    )
    payload = json.loads(event["payload"])
    assert payload["campaign_id"] == str(campaign.id) and payload["campaign"] == "TCU 2.1.0"
    assert payload["requires_consent"] is True and payload["attempt"] == 1
    assert (payload["purpose"], payload["duration_min"], payload["functions_unavailable"]) == (
        "Security fixes for the telematics unit",
        15,
        ["remote services"],
    )

    await notify(platform)
    listing = await platform.http.get("/v1/me/notifications", headers=ada.headers)
    assert listing.status_code == 200, listing.text
    assert listing.json()["count"] == 1
    [told] = listing.json()["data"]
    assert (told["topic"], told["vin"], told["category"]) == ("ota.offer", vin, "informational")
    assert told["title"] == "Software update ready for your approval"
    assert told["body"] == (
        "Security fixes for the telematics unit. Installing version 2.1.0 takes about 15 min. "
        "Not available meanwhile: remote services. Accept or decline the update in the app."
    )
    accept_path = f"/v1/me/vehicles/{vin}/ota/{campaign.id}/accept"
    assert told["data"]["accept_path"] == accept_path
    assert told["data"]["decline_path"] == f"/v1/me/vehicles/{vin}/ota/{campaign.id}/decline"
    assert told["data"]["campaign_id"] == str(campaign.id)
    assert [d["channel"] for d in told["deliveries"] if d["state"] == "sent"] == ["app"]
    # Nobody else hears of it, nor may answer it.
    others = await platform.http.get("/v1/me/notifications", headers=bob.headers)
    assert others.json()["count"] == 0
    assert (await platform.http.post(accept_path, headers=bob.headers)).status_code == 404

    # The app's button: the next tick gives the car its go-ahead.
    accepted = await platform.http.post(told["data"]["accept_path"], headers=ada.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    await tick(t + timedelta(seconds=1))
    # No progress for resend_after: the go-ahead is sent again.
    await pool.execute("UPDATE ota_campaign_vehicles SET updated_at = $1", t)
    await tick(t + timedelta(seconds=120))
    assert [c.payload["approved"] for c in sink.to(vin)] == [False, True, True]
    # Resent commands are the same offer: no second event, no second notification.
    assert len(await outbox(pool, "ota.offer")) == 1
    await notify(platform)
    assert len(await notifications_of(pool, ada.id)) == 1


async def test_an_owner_hears_how_each_attempt_ended_and_is_asked_again_on_a_retry(
    platform: Platform,
) -> None:
    pool = platform.pool
    owned, stock = vins(2)
    for vin in (owned, stock):
        await register(pool, vin)
    ada = await owner(platform, "ada@example.com", owned)
    cars = {vin: ReportingCar.of(vin) for vin in (owned, stock)}
    for car in cars.values():
        await car.register_key(pool)
    t = now()
    await parked(pool, [owned, stock], t)
    campaign = await create_campaign(pool, spec(), t)
    tick = scheduler(pool, RecordingSink()).tick
    ingest = StatusIngest(pool)

    async def report(vin: str, *steps: str, code: str | None = None, at: datetime) -> None:
        for step in steps:
            outcome = await ingest.handle(vin, cars[vin].report(campaign.id, step, code=code), at)
            assert outcome.accepted and outcome.reason is None, outcome

    async def accept(at: datetime) -> None:
        await owner_decision(
            pool, customer_id=ada.id, vin=owned, campaign_id=campaign.id, accept=True, now=at
        )

    await tick(t)
    await notify(platform)
    await accept(t)
    await report(owned, "downloading", "installing", at=t)
    await report(owned, "rolled_back", code="install_failed", at=t)
    await report(stock, "downloading", "installed", at=t)  # no owner: nobody to tell
    [first] = await outbox(pool, "ota.update_result")
    assert (first["vin"], first["customer_id"]) == (owned, ada.id)
    assert json.loads(first["payload"]) == {
        "campaign_id": str(campaign.id),
        "campaign": "TCU 2.1.0",
        "vin": owned,
        "target": "tcu-fw-2.1.0",
        "version": "2.1.0",
        "status": "rolled_back",
        "attempt": 1,
        "code": "install_failed",
    }

    # The operator retries: a new attempt, offered and asked anew.
    await retry(pool, vin=owned, campaign_id=campaign.id, now=t)
    await tick(t + timedelta(seconds=1))
    assert [json.loads(e["payload"])["attempt"] for e in await outbox(pool, "ota.offer")] == [1, 2]
    await accept(t + timedelta(seconds=1))
    later = t + timedelta(seconds=2)
    await report(owned, "downloading", "installing", "installed", at=later)
    # A later report of the same status (the car reporting again) changes nothing.
    await report(owned, "installed", at=later)
    results = await outbox(pool, "ota.update_result")
    assert [json.loads(e["payload"])["status"] for e in results] == ["rolled_back", "installed"]

    await notify(platform)
    told = [(n["topic"], n["title"]) for n in await notifications_of(pool, ada.id)]
    assert told == [
        ("ota.offer", "Software update ready for your approval"),
        ("ota.update_result", "Software update not installed"),
        ("ota.offer", "Software update ready for your approval"),
        ("ota.update_result", "Software update installed"),
    ]
    installed = (await notifications_of(pool, ada.id))[-1]
    assert installed["body"] == "Your vehicle now runs version 2.1.0."
    assert json.loads(installed["data"])["status"] == "installed"
    assert await pool.fetchval("SELECT count(*) FROM notifications") == 4


async def test_an_owner_who_never_heard_of_the_offer_is_not_told_how_it_ended(
    platform: Platform,
) -> None:
    pool = platform.pool
    (vin,) = vins(1)
    await register(pool, vin)
    car = ReportingCar.of(vin)
    await car.register_key(pool)
    t = now()
    await parked(pool, [vin], t)
    campaign = await create_campaign(pool, spec(), t)
    await scheduler(pool, RecordingSink()).tick(t)  # the OEM's own car: accepted at once
    assert await outbox(pool, "ota.offer") == []
    # Sold while the update runs: the new owner was never offered it.
    ute = await owner(platform, "ute@example.de", vin, language="de")
    outcome = await StatusIngest(pool).handle(vin, car.report(campaign.id, "installed"), t)
    assert outcome.accepted
    assert len(await outbox(pool, "ota.update_result")) == 1
    await notify(platform)
    assert await notifications_of(pool, ute.id) == []
