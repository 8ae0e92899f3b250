"""Campaigns in PostgreSQL: reading them with their live statistics, and the operator's
actions (pause, resume, cancel). Creating one is :mod:`ota.campaigns.creation`."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from ota.campaigns.errors import CampaignNotFoundError, CampaignStateError
from ota.campaigns.model import (
    Campaign,
    CampaignSpec,
    CampaignStatus,
    owner_info_from,
    preconditions_from,
    targeting_from,
    waves_from,
    window_from,
)
from ota.campaigns.topics import CAMPAIGN_CANCELLED
from ota.image_target import ImageSpec, ImageTarget
from ota.status_machine import FAILURES, UpdateStatus

S = UpdateStatus
C = CampaignStatus
_COLUMNS = (
    "id, name, target_path, target_name, target_version, target_sha256, target_length,"
    " hardware_ids, release_counter, targeting, waves, maintenance_window, preconditions,"
    " owner_info, default_timezone, downgrade_override, status, current_wave, status_reason,"
    " acknowledged_failures, enrolled_until, created_at, updated_at"
)


def campaign_of(row: asyncpg.Record) -> Campaign:
    override = json.loads(row["downgrade_override"]) if row["downgrade_override"] else None
    spec = CampaignSpec(
        name=row["name"],
        target_path=row["target_path"],
        owner_info=owner_info_from(json.loads(row["owner_info"])),
        waves=waves_from(json.loads(row["waves"])),
        targeting=targeting_from(json.loads(row["targeting"])),
        window=window_from(json.loads(row["maintenance_window"] or "null")),
        preconditions=preconditions_from(json.loads(row["preconditions"])),
        default_timezone=row["default_timezone"],
        downgrade_signatures=override,
    )
    image = ImageTarget(
        ImageSpec(
            row["target_name"],
            row["target_version"],
            tuple(row["hardware_ids"]),
            row["release_counter"],
        ),
        row["target_length"],
        row["target_sha256"],
    )
    return Campaign(
        id=row["id"],
        spec=spec,
        image=image,
        status=CampaignStatus(row["status"]),
        current_wave=row["current_wave"],
        status_reason=row["status_reason"],
        enrolled_until=row["enrolled_until"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        acknowledged_failures={
            int(k): v for k, v in json.loads(row["acknowledged_failures"]).items()
        },
    )


async def get_campaign(
    conn: asyncpg.Connection | asyncpg.Pool, campaign_id: uuid.UUID, *, lock: bool = False
) -> Campaign:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM ota_campaigns WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        campaign_id,
    )
    if row is None:
        raise CampaignNotFoundError(f"no campaign {campaign_id}", campaign_id=str(campaign_id))
    return campaign_of(row)


async def page_campaigns(
    conn: asyncpg.Connection | asyncpg.Pool, *, limit: int, offset: int
) -> tuple[list[Campaign], int]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ota_campaigns ORDER BY created_at DESC, id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    count: int = await conn.fetchval("SELECT count(*) FROM ota_campaigns")
    return [campaign_of(r) for r in rows], count


async def campaigns_in(
    conn: asyncpg.Connection | asyncpg.Pool, statuses: Collection[CampaignStatus]
) -> list[Campaign]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ota_campaigns WHERE status = ANY($1::text[]) ORDER BY created_at",
        [s.value for s in statuses],
    )
    return [campaign_of(r) for r in rows]


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaveStats:
    wave: int
    size: int  # vehicles in the wave, declined and cancelled ones excluded
    installed: int
    failed: int  # failed or rolled back
    in_flight: int  # offered .. installing


@dataclass(frozen=True, slots=True)
class CampaignStats:
    by_status: Mapping[str, int]
    waves: tuple[WaveStats, ...]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def rate(self, *statuses: UpdateStatus) -> float:
        counted = sum(self.by_status.get(s.value, 0) for s in statuses)
        return counted / self.total if self.total else 0.0


@dataclass
class _Tally:
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(S, 0))
    waves: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))


async def campaign_stats(
    conn: asyncpg.Connection | asyncpg.Pool, campaign_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, CampaignStats]:
    tallies: dict[uuid.UUID, _Tally] = {cid: _Tally() for cid in campaign_ids}
    rows = await conn.fetch(
        "SELECT campaign_id, wave, status, count(*) AS n FROM ota_campaign_vehicles"
        " WHERE campaign_id = ANY($1) GROUP BY campaign_id, wave, status",
        list(campaign_ids),
    )
    for row in rows:
        tally = tallies[row["campaign_id"]]
        tally.by_status[row["status"]] += row["n"]
        tally.waves[row["wave"]][row["status"]] = row["n"]
    return {cid: _stats(t) for cid, t in tallies.items()}


def _stats(tally: _Tally) -> CampaignStats:
    waves = []
    for wave in sorted(tally.waves):
        counts = tally.waves[wave]
        waves.append(
            WaveStats(
                wave=wave,
                size=sum(n for s, n in counts.items() if s != S.CANCELLED),
                installed=counts.get(S.INSTALLED, 0),
                failed=sum(counts.get(s, 0) for s in FAILURES),
                in_flight=sum(
                    counts.get(s, 0)
                    for s in (S.OFFERED, S.ACCEPTED, S.DOWNLOADING, S.DOWNLOADED, S.INSTALLING)
                ),
            )
        )
    return CampaignStats(dict(tally.by_status), tuple(waves))


# -- operator actions ---------------------------------------------------------------------------

_ALLOWED_FROM: Mapping[str, frozenset[CampaignStatus]] = {
    "pause": frozenset({C.ACTIVE}),
    "resume": frozenset({C.PAUSED, C.HALTED}),
    "cancel": frozenset({C.ACTIVE, C.PAUSED, C.HALTED, C.COMPLETED}),
}
_TARGET = {"pause": C.PAUSED, "resume": C.ACTIVE, "cancel": C.CANCELLED}


async def change_status(
    pool: asyncpg.Pool, campaign_id: uuid.UUID, action: str, now: datetime
) -> Campaign:
    """Pause, resume or cancel. Resuming a halted campaign accepts the failures counted so
    far: only new ones count toward the thresholds again. Cancelling withdraws every update
    not yet downloading; cars already downloading or installing finish (an ECU is never
    stopped mid-flash), and the director lists nothing more for the others."""
    async with pool.acquire() as conn, conn.transaction():
        campaign = await get_campaign(conn, campaign_id, lock=True)
        if campaign.status not in _ALLOWED_FROM[action]:
            raise CampaignStateError(
                f"cannot {action} a campaign that is {campaign.status}",
                status=campaign.status.value,
                action=action,
            )
        acknowledged = dict(campaign.acknowledged_failures)
        if action == "resume" and campaign.status is C.HALTED:
            stats = (await campaign_stats(conn, [campaign_id]))[campaign_id]
            acknowledged = {w.wave: w.failed for w in stats.waves}
        await conn.execute(
            "UPDATE ota_campaigns SET status = $2, status_reason = $3, updated_at = $4,"
            " acknowledged_failures = $5 WHERE id = $1",
            campaign_id,
            _TARGET[action].value,
            f"{action} by an operator",
            now,
            json.dumps({str(k): v for k, v in acknowledged.items()}),
        )
        if action == "cancel":
            # The status machine's cancel step (assigned/offered/accepted -> cancelled), for
            # every such update at once.
            await conn.execute(
                "UPDATE ota_campaign_vehicles SET status = 'cancelled', cancelled_at = $2,"
                " result_code = $3, updated_at = $2"
                " WHERE campaign_id = $1 AND status IN ('assigned', 'offered', 'accepted')",
                campaign_id,
                now,
                CAMPAIGN_CANCELLED,
            )
        return await get_campaign(conn, campaign_id)
