"""Creating campaigns against the real database: the image must be published, targeting
selects through the registry, vehicles are placed in waves with the ECUs chosen, downgrades
need an override signed by the image repository's root keys, retried creates are refused,
and vehicles registered later join a running campaign."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import asyncpg
import pytest

from ota.campaigns.creation import create_campaign, enroll_new
from ota.campaigns.downgrade import sign_override
from ota.campaigns.errors import (
    CampaignExistsError,
    DowngradeOverrideInvalidError,
    DowngradeRefusedError,
    ImageNotPublishedError,
)
from ota.campaigns.model import CampaignStatus
from ota.campaigns.store import campaign_stats, get_campaign
from ota.campaigns.targeting import Targeting
from ota.campaigns.updates import list_updates
from ota.image_target import ImageSpec
from ota.keys import generate_key, signer_for
from ota.policy import ROOT
from ota.rollout import Wave
from tests.ota.conftest import OtaFixture, chunks_of
from tests.ota.test_campaign_world import HARDWARE_ID, now, publish, register, spec, tcu, vins

pytestmark = pytest.mark.integration


async def test_a_campaign_places_the_targeted_vehicles_in_waves(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    fleet = vins(20)
    for vin in fleet:
        await register(pool, vin)
    await register(pool, "WBA3A5C50CF256985", ecus=[tcu("WBA3A5C50CF256985", hardware_id="BMW-X")])
    waves = (Wave(0.1), Wave(0.5), Wave(1.0))
    campaign = await create_campaign(pool, spec(waves=waves), now())
    assert campaign.status is CampaignStatus.ACTIVE and campaign.current_wave == 0
    assert campaign.image.path == "tcu-fw-2.1.0" and campaign.image.spec.release_counter == 3
    updates, count = await list_updates(pool, campaign.id, status=None, limit=100, offset=0)
    assert count == 20  # the BMW has no ECU the image is built for
    assert Counter(u.wave for u in updates) == {0: 2, 1: 8, 2: 10}
    assert {u.record.status.value for u in updates} == {"assigned"}
    ecus = await pool.fetchval(
        "SELECT ecus::text FROM ota_campaign_vehicles WHERE campaign_id = $1 AND vin = $2",
        campaign.id,
        fleet[0],
    )
    assert ecus == f'[{{"serial": "TCU-{fleet[0][-6:]}", "hardware_id": "{HARDWARE_ID}"}}]'
    stats = (await campaign_stats(pool, [campaign.id]))[campaign.id]
    assert stats.total == 20 and stats.by_status["assigned"] == 20
    assert [w.size for w in stats.waves] == [2, 8, 10]


async def test_an_image_the_repository_does_not_list_is_refused(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    spec_ = ota.service.artifacts

    await spec_.upload(
        ImageSpec("tcu-fw", "2.1.0", (HARDWARE_ID,), 3), chunks_of(b"x" * 100), now()
    )
    with pytest.raises(ImageNotPublishedError) as caught:
        await create_campaign(pool, spec(), now())  # uploaded, not published
    assert caught.value.code == "image_not_published"
    assert await pool.fetchval("SELECT count(*) FROM ota_campaigns") == 0


async def test_a_downgrade_needs_the_root_keys_override(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    await register(pool, "WVWZZZ1JZXW000001", ecus=[tcu("WVWZZZ1JZXW000001", "2.0.0")])
    await register(pool, "WVWZZZ1JZXW000002", ecus=[tcu("WVWZZZ1JZXW000002", "2.2.0")])
    with pytest.raises(DowngradeRefusedError) as caught:
        await create_campaign(pool, spec(), now())
    assert caught.value.vins == ("WVWZZZ1JZXW000002",)
    # Signed by a key that is not the root's: refused.
    stranger = sign_override([signer_for(generate_key())], "TCU 2.1.0", "tcu-fw-2.1.0")
    with pytest.raises(DowngradeOverrideInvalidError):
        await create_campaign(pool, spec(downgrade_signatures=stranger), now())
    # Signed by the root key, but for another image: refused.
    root_signers = ota.offline.signers(ROOT)
    other = sign_override(root_signers, "TCU 2.1.0", "tcu-fw-9.9.9")
    with pytest.raises(DowngradeOverrideInvalidError):
        await create_campaign(pool, spec(downgrade_signatures=other), now())
    override = sign_override(root_signers, "TCU 2.1.0", "tcu-fw-2.1.0")
    campaign = await create_campaign(pool, spec(downgrade_signatures=override), now())
    assert (await campaign_stats(pool, [campaign.id]))[campaign.id].total == 2
    # Without a downgrade, no override is needed: only the first car.
    only_first = Targeting(current_versions=frozenset({"2.0.0"}))
    assert await create_campaign(pool, spec(targeting=only_first, name="up"), now())


async def test_a_retried_create_with_the_same_id_makes_no_second_campaign(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    campaign_id = uuid.uuid4()
    await create_campaign(pool, spec(), now(), campaign_id=campaign_id)
    with pytest.raises(CampaignExistsError):
        await create_campaign(pool, spec(), now(), campaign_id=campaign_id)
    assert await pool.fetchval("SELECT count(*) FROM ota_campaigns") == 1


async def test_vehicles_registered_later_join_the_open_wave(
    pool: asyncpg.Pool, ota: OtaFixture
) -> None:
    await publish(ota, "2.1.0", counter=3)
    for vin in vins(10):
        await register(pool, vin)
    future = Targeting(include_future=True, model_years=frozenset({2022}))
    campaign = await create_campaign(
        pool, spec(targeting=future, waves=(Wave(0.5), Wave(1.0))), now()
    )
    await pool.execute("UPDATE ota_campaigns SET current_wave = 1 WHERE id = $1", campaign.id)
    late = "WVWZZZ1JZXW000099"
    await register(pool, late)
    await register(pool, "WVWZZZ1JZXW000098", year=2019)  # not targeted
    campaign = await get_campaign(pool, campaign.id)
    later = now() + timedelta(seconds=5)
    async with pool.acquire() as conn:
        assert await enroll_new(conn, campaign, later) == 1
        assert await enroll_new(conn, await get_campaign(conn, campaign.id), later) == 0
    wave = await pool.fetchval(
        "SELECT wave FROM ota_campaign_vehicles WHERE campaign_id = $1 AND vin = $2",
        campaign.id,
        late,
    )
    assert wave == 1
