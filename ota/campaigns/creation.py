"""Creating a campaign: the image must be published, a downgrade needs the signed override,
and the vehicles targeted now are placed in waves at once (later registrations join while the
campaign runs, :func:`enroll_new`). One transaction: a campaign never exists half-enrolled."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from ota.campaigns.downgrade import verify_override
from ota.campaigns.errors import (
    CampaignExistsError,
    DowngradeRefusedError,
    ImageNotPublishedError,
)
from ota.campaigns.facts import vehicles
from ota.campaigns.model import (
    Campaign,
    CampaignSpec,
    CampaignStatus,
    preconditions_json,
    targeting_json,
    waves_json,
    window_json,
)
from ota.campaigns.store import get_campaign
from ota.campaigns.targeting import EcuFacts, VehicleFacts, targeted
from ota.campaigns.versions import is_older
from ota.image_target import ImageSpec, ImageTarget
from ota.policy import ROOT
from ota.rollout import place
from ota.tuf_api import Metadata, Root

ENROLL_OVERLAP = timedelta(minutes=5)
Chosen = list[tuple[VehicleFacts, tuple[EcuFacts, ...]]]


async def published_image(conn: asyncpg.Connection, target_path: str) -> ImageTarget | None:
    row = await conn.fetchrow(
        "SELECT name, version, length, sha256, hardware_ids, release_counter, dependencies,"
        " conflicts FROM ota_artifacts WHERE target_path = $1 AND published_at IS NOT NULL",
        target_path,
    )
    if row is None:
        return None
    spec = ImageSpec(
        row["name"],
        row["version"],
        tuple(row["hardware_ids"]),
        row["release_counter"],
        tuple(row["dependencies"]),
        tuple(row["conflicts"]),
    )
    return ImageTarget(spec, row["length"], row["sha256"])


async def image_root(conn: asyncpg.Connection) -> Root | None:
    body = await conn.fetchval(
        "SELECT body FROM ota_tuf_metadata WHERE role = $1 ORDER BY version DESC LIMIT 1", ROOT
    )
    if body is None:
        return None
    root = Metadata.from_bytes(bytes(body)).signed
    assert isinstance(root, Root)
    return root


def downgraded(chosen: Chosen, image: ImageTarget) -> list[str]:
    """VINs where the image is older than what a targeted ECU runs."""
    return [
        vehicle.vin
        for vehicle, ecus in chosen
        if any(is_older(image.spec.version, ecu.version) for ecu in ecus)
    ]


async def create_campaign(
    pool: asyncpg.Pool,
    spec: CampaignSpec,
    now: datetime,
    *,
    campaign_id: uuid.UUID | None = None,
) -> Campaign:
    """``campaign_id``: chosen by the client, so that a create retried after a lost response
    cannot make a second campaign (and a rerun of a benchmark places the same cars in the
    same waves: placement hashes the id)."""
    campaign_id = campaign_id or uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM ota_campaigns WHERE id = $1)", campaign_id
        ):
            raise CampaignExistsError(
                f"campaign {campaign_id} exists already", campaign_id=str(campaign_id)
            )
        image = await published_image(conn, spec.target_path)
        if image is None:
            raise ImageNotPublishedError(
                f"the image repository lists no {spec.target_path}", target_path=spec.target_path
            )
        # The registry's clock, not ours: vehicles.created_at is the database's now().
        until = await conn.fetchval("SELECT now()")
        found = await vehicles(
            conn, registered_after=None, registered_until=until, vins=spec.targeting.vins or None
        )
        chosen = targeted(spec.targeting, found, image.spec.hardware_ids)
        older = downgraded(chosen, image)
        if older:
            if spec.downgrade_signatures is None:
                raise DowngradeRefusedError(
                    f"{image.spec.version} is older than what {len(older)} targeted vehicles "
                    "run; a downgrade needs an override signed by the root keys",
                    vins=tuple(older[:20]),
                    target_version=image.spec.version,
                )
            root = await image_root(conn)
            assert root is not None  # a published image implies an initialized repository
            verify_override(root, spec.downgrade_signatures, spec.name, spec.target_path)
        await _insert_campaign(conn, campaign_id, spec, image, now, enrolled_until=until)
        placed = place(str(campaign_id), [v.vin for v, _ in chosen], spec.waves)
        await insert_updates(conn, campaign_id, chosen, placed, now)
        return await get_campaign(conn, campaign_id)


async def enroll_new(conn: asyncpg.Connection, campaign: Campaign, now: datetime) -> int:
    """Target vehicles registered since the campaign last looked (``include_future``); they
    join the wave open now. Returns how many joined. A downgrade is skipped unless the
    campaign carries the override.

    ``created_at`` is the registering transaction's start, which may commit after a later
    look: each look goes back ``ENROLL_OVERLAP`` before the last one (re-looking costs
    nothing, enrolling is idempotent) so no registration slips between two looks."""
    until = await conn.fetchval("SELECT now()")
    found = await vehicles(
        conn,
        registered_after=campaign.enrolled_until - ENROLL_OVERLAP,
        registered_until=until,
        vins=campaign.spec.targeting.vins or None,
    )
    chosen = targeted(campaign.spec.targeting, found, campaign.image.spec.hardware_ids)
    if campaign.spec.downgrade_signatures is None:
        older = set(downgraded(chosen, campaign.image))
        chosen = [(v, ecus) for v, ecus in chosen if v.vin not in older]
    wave = min(campaign.current_wave, len(campaign.spec.waves) - 1)
    joined = await insert_updates(
        conn, campaign.id, chosen, dict.fromkeys((v.vin for v, _ in chosen), wave), now
    )
    await conn.execute(
        "UPDATE ota_campaigns SET enrolled_until = $2 WHERE id = $1", campaign.id, until
    )
    return joined


async def insert_updates(
    conn: asyncpg.Connection,
    campaign_id: uuid.UUID,
    chosen: Sequence[tuple[VehicleFacts, tuple[EcuFacts, ...]]],
    waves: dict[str, int],
    now: datetime,
) -> int:
    if not chosen:
        return 0
    status: str = await conn.execute(
        "INSERT INTO ota_campaign_vehicles (campaign_id, vin, wave, ecus, status, assigned_at,"
        " updated_at)"
        " SELECT $1, v.vin, v.wave, v.ecus::jsonb, 'assigned', $5, $5"
        " FROM unnest($2::text[], $3::int[], $4::text[]) AS v(vin, wave, ecus)"
        " ON CONFLICT DO NOTHING",
        campaign_id,
        [v.vin for v, _ in chosen],
        [waves[v.vin] for v, _ in chosen],
        [
            json.dumps([{"serial": e.serial, "hardware_id": e.hardware_id} for e in ecus])
            for _, ecus in chosen
        ],
        now,
    )
    return int(status.rsplit(maxsplit=1)[-1])


async def _insert_campaign(
    conn: asyncpg.Connection,
    campaign_id: uuid.UUID,
    spec: CampaignSpec,
    image: ImageTarget,
    now: datetime,
    *,
    enrolled_until: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO ota_campaigns (id, name, target_path, target_name, target_version,"
        " target_sha256, target_length, hardware_ids, release_counter, targeting, waves,"
        " maintenance_window, preconditions, owner_info, default_timezone, downgrade_override,"
        " status, current_wave, enrolled_until, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
        " 0, $19, $18, $18)",
        campaign_id,
        spec.name,
        image.path,
        image.spec.name,
        image.spec.version,
        image.sha256,
        image.length,
        list(image.spec.hardware_ids),
        image.spec.release_counter,
        json.dumps(targeting_json(spec.targeting)),
        json.dumps(waves_json(spec.waves)),
        json.dumps(window_json(spec.window)) if spec.window else None,
        json.dumps(preconditions_json(spec.preconditions)),
        json.dumps(spec.owner_info.to_json()),
        spec.default_timezone,
        json.dumps(dict(spec.downgrade_signatures)) if spec.downgrade_signatures else None,
        CampaignStatus.ACTIVE.value,
        now,
        enrolled_until,
    )
