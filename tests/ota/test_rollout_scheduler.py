"""The rollout scheduler's tick against the real database, with the command sink in memory:
offers only to the open wave and only when window and preconditions allow, the owner told
through the outbox and asked for consent unless ``ota_auto_install`` is granted, commands
resent when the broker was away or the owner accepted later, waves advancing and the campaign
halting itself, and the operator's pause, resume and cancel."""

from __future__ import annotations

import json
from datetime import time, timedelta
from uuid import UUID

import asyncpg
import pytest

from ota.campaigns.consent import owner_decision, retry
from ota.campaigns.creation import create_campaign
from ota.campaigns.model import CampaignStatus
from ota.campaigns.store import change_status, get_campaign
from ota.campaigns.updates import apply, load_update
from ota.campaigns.windows import MaintenanceWindow
from ota.rollout import Decision, Wave
from ota.rollout_scheduler import RolloutScheduler
from ota.rollout_settings import RolloutSettings
from ota.status_machine import UpdateStatus
from tests.ota.conftest import OtaFixture
from tests.ota.test_campaign_world import RecordingSink, now, parked, publish, register, spec, vins

pytestmark = pytest.mark.integration
S = UpdateStatus


def scheduler(pool: asyncpg.Pool, sink: RecordingSink) -> RolloutScheduler:
    return RolloutScheduler(pool, sink, settings=RolloutSettings(resend_after_s=60))


async def statuses(pool: asyncpg.Pool, campaign_id: object) -> dict[str, str]:
    rows = await pool.fetch(
        "SELECT vin, status FROM ota_campaign_vehicles WHERE campaign_id = $1", campaign_id
    )
    return {r["vin"]: r["status"] for r in rows}


async def customer(pool: asyncpg.Pool, vin: str, *, auto_install: bool | None = None) -> UUID:
    customer_id: UUID = await pool.fetchval(
        "INSERT INTO customers (email, timezone) VALUES ($1, 'Europe/Berlin') RETURNING id",
        f"{vin.lower()}@example.com",
    )
    await pool.execute(
        "INSERT INTO vehicle_ownership (vin, customer_id, source, started_at)"
        " VALUES ($1, $2, 'admin', now())",
        vin,
        customer_id,
    )
    if auto_install is not None:
        await pool.execute(
            "INSERT INTO customer_consents (customer_id, purpose, granted, source, changed_at)"
            " VALUES ($1, 'ota_auto_install', $2, 'app', now())",
            customer_id,
            auto_install,
        )
    return customer_id


async def test_only_the_open_wave_is_offered_and_only_when_parked(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    fleet = vins(10)
    for vin in fleet:
        await register(pool, vin)
    t = now()
    campaign = await create_campaign(pool, spec(waves=(Wave(0.5), Wave(1.0))), t)
    first_wave = {
        r["vin"]
        for r in await pool.fetch(
            "SELECT vin FROM ota_campaign_vehicles WHERE campaign_id = $1 AND wave = 0",
            campaign.id,
        )
    }
    driving = sorted(first_wave)[0]
    await parked(pool, [v for v in fleet if v != driving], t)
    await parked(pool, [driving], t, **{"Vehicle.Speed": 42.0})
    sink = RecordingSink()
    report = await scheduler(pool, sink).tick(t)
    assert report.offered == 4 and report.sent == 4
    assert {vin for vin, _ in sink.sent} == first_wave - {driving}
    vin, command = sink.sent[0]
    assert command.type.value == "ota.offer"
    assert command.payload["approved"] is True  # no owner: the OEM's own car
    assert command.payload["target"] == "tcu-fw-2.1.0"
    assert command.payload["director"] == f"/ota/director/{vin}/"
    now_status = await statuses(pool, campaign.id)
    assert now_status[driving] == "assigned"
    assert {now_status[v] for v in first_wave - {driving}} == {"accepted"}
    async with pool.acquire() as conn:
        held = await load_update(conn, campaign.id, driving)
    assert held is not None and held.hold_reason == "not_parked"
    # Stopped: offered at the next tick.
    await parked(pool, [driving], t + timedelta(seconds=1))
    await scheduler(pool, sink).tick(t + timedelta(seconds=2))
    assert (await statuses(pool, campaign.id))[driving] == "accepted"


async def test_the_maintenance_window_is_the_owners_local_time(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    berlin_car, stock_car = vins(2)
    for vin in (berlin_car, stock_car):
        await register(pool, vin)
    await customer(pool, berlin_car, auto_install=True)  # Europe/Berlin
    t = now()
    await parked(pool, [berlin_car, stock_car], t)
    # A one-hour window around the current Berlin hour: open for the owner's car; the
    # campaign's default zone (12 hours away) keeps it closed for the car without owner.
    hour = t.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).hour
    window = MaintenanceWindow(time(hour), time((hour + 1) % 24))
    far = "Pacific/Kiritimati" if hour < 12 else "Pacific/Pago_Pago"
    campaign = await create_campaign(pool, spec(window=window, default_timezone=far), t)
    await scheduler(pool, RecordingSink()).tick(t)
    assert await statuses(pool, campaign.id) == {berlin_car: "accepted", stock_car: "assigned"}
    async with pool.acquire() as conn:
        held = await load_update(conn, campaign.id, stock_car)
    assert held is not None and held.hold_reason == "outside_maintenance_window"


async def test_an_owner_is_informed_and_asked_unless_they_consented_to_auto_install(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    asks, auto = vins(2)
    for vin in (asks, auto):
        await register(pool, vin)
    asker = await customer(pool, asks)
    await customer(pool, auto, auto_install=True)
    t = now()
    await parked(pool, [asks, auto], t)
    campaign = await create_campaign(pool, spec(), t)
    sink = RecordingSink()
    await scheduler(pool, sink).tick(t)
    assert await statuses(pool, campaign.id) == {asks: "offered", auto: "accepted"}
    assert [c.payload["approved"] for c in sink.to(asks)] == [False]  # shown, not installed
    assert [c.payload["approved"] for c in sink.to(auto)] == [True]
    events = await pool.fetch("SELECT topic, vin, customer_id, payload FROM outbox ORDER BY id")
    assert [(e["topic"], e["vin"]) for e in events] == [("ota.offer", asks), ("ota.offer", auto)]
    payload = json.loads(events[0]["payload"])
    assert events[0]["customer_id"] == asker
    assert payload["requires_consent"] is True
    assert payload["purpose"] == "Security fixes for the telematics unit"
    assert payload["duration_min"] == 15 and payload["functions_unavailable"] == ["remote services"]
    assert json.loads(events[1]["payload"])["requires_consent"] is False
    # The owner accepts in the app: the next tick sends the car its go-ahead.
    await owner_decision(
        pool,
        customer_id=asker,
        vin=asks,
        campaign_id=campaign.id,
        accept=True,
        now=t,
    )
    await scheduler(pool, sink).tick(t + timedelta(seconds=1))
    assert [c.payload["approved"] for c in sink.to(asks)] == [False, True]
    assert len(sink.to(auto)) == 1  # nothing new for the car already told


async def test_commands_the_broker_did_not_take_are_sent_at_the_next_tick(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    (vin,) = vins(1)
    await register(pool, vin)
    t = now()
    await parked(pool, [vin], t)
    await create_campaign(pool, spec(), t)
    sink = RecordingSink(fail=True)
    report = await scheduler(pool, sink).tick(t)
    assert (report.offered, report.sent, report.unsent) == (1, 0, 1)
    sink.fail = False
    report = await scheduler(pool, sink).tick(t + timedelta(seconds=1))
    assert (report.offered, report.sent) == (0, 1)
    # No progress for resend_after: offered again (a lost command or report heals).
    await scheduler(pool, sink).tick(t + timedelta(seconds=30))
    assert len(sink.to(vin)) == 1
    await pool.execute("UPDATE ota_campaign_vehicles SET updated_at = $1", t)
    await scheduler(pool, sink).tick(t + timedelta(seconds=120))
    assert len(sink.to(vin)) == 2 and sink.to(vin)[0].id != sink.to(vin)[1].id


async def finish(pool: asyncpg.Pool, campaign_id: object, vins_: list[str], *steps: S) -> None:
    async with pool.acquire() as conn:
        for vin in vins_:
            for step in steps:
                await apply(conn, campaign_id, vin, step, now())  # type: ignore[arg-type]


async def test_waves_open_on_success_and_the_campaign_halts_on_failures(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    fleet = vins(20)
    for vin in fleet:
        await register(pool, vin)
    t = now()
    await parked(pool, fleet, t)
    waves = (Wave(0.25, 0.75, 0.2), Wave(0.5, 0.75, 0.2), Wave(1.0, 0.75, 0.2))
    campaign = await create_campaign(pool, spec(waves=waves), t)
    tick = scheduler(pool, RecordingSink()).tick
    await tick(t)
    wave0 = sorted(v for v, s in (await statuses(pool, campaign.id)).items() if s == "accepted")
    assert len(wave0) == 5
    await finish(pool, campaign.id, wave0[:4], S.INSTALLED)
    await finish(pool, campaign.id, wave0[4:], S.INSTALLING, S.ROLLED_BACK)  # 1/5 = 20 %
    report = await tick(t + timedelta(seconds=1))
    assert [d for _, d, _ in report.decisions] == [Decision.ADVANCE]
    assert (await get_campaign(pool, campaign.id)).current_wave == 1
    wave1 = sorted(v for v, s in (await statuses(pool, campaign.id)).items() if s == "accepted")
    assert len(wave1) == 5
    await finish(pool, campaign.id, wave1[:3], S.DOWNLOADING, S.FAILED)  # 3/5 > 20 %
    report = await tick(t + timedelta(seconds=2))
    assert [d for _, d, _ in report.decisions] == [Decision.HALT]
    halted = await get_campaign(pool, campaign.id)
    assert halted.status is CampaignStatus.HALTED and halted.current_wave == 1
    assert halted.status_reason == "wave 1: 3 of 5 failed (60% > 20%)"
    assert await pool.fetchval("SELECT topic FROM outbox WHERE topic LIKE 'ota.campaign%'") == (
        "ota.campaign_halted"
    )
    # Halted: nothing more is offered.
    assert (await tick(t + timedelta(seconds=3))).offered == 0
    # An operator resumes, accepting the failures so far; new failures count again.
    await change_status(pool, campaign.id, "resume", t)
    assert (await tick(t + timedelta(seconds=4))).decisions == []
    await finish(pool, campaign.id, wave1[3:], S.INSTALLED)
    # The failed cars are offered again (a new attempt) and install this time.
    for vin in wave1[:3]:
        await retry(pool, vin=vin, campaign_id=campaign.id, now=t)
    await tick(t + timedelta(seconds=5))
    await finish(pool, campaign.id, wave1[:3], S.INSTALLED)
    report = await tick(t + timedelta(seconds=6))
    assert [d for _, d, _ in report.decisions] == [Decision.ADVANCE]
    rest = sorted(v for v, s in (await statuses(pool, campaign.id)).items() if s == "accepted")
    await finish(pool, campaign.id, rest, S.INSTALLED)
    report = await tick(t + timedelta(seconds=7))
    assert [d for _, d, _ in report.decisions] == [Decision.COMPLETE]
    done = await get_campaign(pool, campaign.id)
    assert done.status is CampaignStatus.COMPLETED
    attempts = await pool.fetchval(
        "SELECT max(attempt) FROM ota_campaign_vehicles WHERE campaign_id = $1", campaign.id
    )
    assert attempts == 2


async def test_pause_stops_offers_and_cancel_withdraws_what_has_not_started(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    fleet = vins(4)
    for vin in fleet:
        await register(pool, vin)
    t = now()
    campaign = await create_campaign(pool, spec(), t)
    await change_status(pool, campaign.id, "pause", t)
    await parked(pool, fleet, t)
    assert (await scheduler(pool, RecordingSink()).tick(t)).offered == 0
    await change_status(pool, campaign.id, "resume", t)
    assert (await scheduler(pool, RecordingSink()).tick(t)).offered == 4
    await finish(pool, campaign.id, fleet[:1], S.DOWNLOADING)
    cancelled = await change_status(pool, campaign.id, "cancel", t)
    assert cancelled.status is CampaignStatus.CANCELLED
    after = await statuses(pool, campaign.id)
    assert after[fleet[0]] == "downloading"  # a download under way finishes
    assert {after[v] for v in fleet[1:]} == {"cancelled"}
    from ota.campaigns.errors import CampaignStateError

    with pytest.raises(CampaignStateError):
        await change_status(pool, campaign.id, "resume", t)
