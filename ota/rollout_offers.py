"""Offering updates: which assigned vehicles of an open wave may be offered now, and the
commands that tell them.

A vehicle is offered when the campaign's maintenance window is open in its local time and its
latest state meets the preconditions; otherwise it keeps waiting, with the reason recorded
(``hold_reason``) and is looked at again at a later tick (least recently looked at first, so
no vehicle starves behind others that keep waiting). An offer always informs the owner through
the outbox (``ota.offer``: purpose, duration, functions unavailable; UN R156 7.2.2.1.2); it is
accepted at once when no consent is needed (no owner, or ``ota_auto_install`` granted), else
when the owner accepts in the app.

Commands are built here and published by the scheduler after the transaction commits: a
command for an offer that was rolled back is never sent, and one whose publish failed is sent
again (``command_at`` stays empty until the broker acknowledged it).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from ota.campaigns.errors import CampaignInvalidError
from ota.campaigns.facts import OfferContext, offer_contexts
from ota.campaigns.model import Campaign
from ota.campaigns.topics import OTA_OFFER, update_subject
from ota.campaigns.updates import apply
from ota.campaigns.windows import zone
from ota.status_machine import IN_FLIGHT, UpdateStatus
from protocol.messages import CommandMessage, CommandType

log = logging.getLogger(__name__)
S = UpdateStatus
DIRECTOR_PATH = "/ota/director/{vin}/"
_IN_FLIGHT = sorted({S.OFFERED.value} | {s.value for s in IN_FLIGHT})

_CANDIDATES = """
SELECT a.vin FROM ota_campaign_vehicles a
WHERE a.campaign_id = $1 AND a.status = 'assigned' AND a.wave <= $2
  AND NOT EXISTS (
      SELECT 1 FROM ota_campaign_vehicles b
      WHERE b.vin = a.vin AND b.campaign_id <> a.campaign_id AND b.status = ANY($4::text[]))
ORDER BY a.updated_at, a.wave, a.vin
LIMIT $3
FOR UPDATE SKIP LOCKED
"""


@dataclass(frozen=True, slots=True)
class OutgoingCommand:
    vin: str
    campaign_id: uuid.UUID
    command: CommandMessage
    approved: bool


def offer_command(
    campaign: Campaign, vin: str, *, attempt: int, sent: int, approved: bool, now: datetime
) -> OutgoingCommand:
    """The ``ota.offer`` command (docs/ota.md, "The car's side"). Each send has its own id:
    the car deduplicates redeliveries of one send, and runs one update per campaign at a time
    whatever it receives."""
    info = campaign.spec.owner_info
    command = CommandMessage(
        id=f"ota-{campaign.id.hex[:12]}-{vin}-a{attempt}-{sent + 1}",
        type=CommandType.OTA_OFFER,
        ts=int(now.timestamp() * 1000),
        payload={
            "campaign_id": str(campaign.id),
            "target": campaign.image.path,
            "version": campaign.image.spec.version,
            "approved": approved,
            "purpose": info.purpose,
            "duration_min": info.duration_min,
            "functions_unavailable": list(info.functions_unavailable),
            "director": DIRECTOR_PATH.format(vin=vin),
        },
    )
    return OutgoingCommand(vin, campaign.id, command, approved)


def hold_reasons(campaign: Campaign, context: OfferContext, now: datetime) -> tuple[str, ...]:
    """Why the vehicle may not be offered now (empty: it may)."""
    reasons: list[str] = []
    window = campaign.spec.window
    if window is not None:
        try:
            tz = zone(context.timezone or campaign.spec.default_timezone)
        except CampaignInvalidError:
            tz = zone(campaign.spec.default_timezone)  # an owner zone removed from tzdata
        if not window.is_open(now, tz):
            reasons.append("outside_maintenance_window")
    reasons.extend(campaign.spec.preconditions.unmet(context.state, context.powertrain, now))
    return tuple(reasons)


async def make_offers(
    pool: asyncpg.Pool, campaign: Campaign, now: datetime, *, batch: int
) -> list[OutgoingCommand]:
    commands: list[OutgoingCommand] = []
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_CANDIDATES, campaign.id, campaign.current_wave, batch, _IN_FLIGHT)
        contexts = await offer_contexts(conn, [r["vin"] for r in rows])
        for row in rows:
            vin = row["vin"]
            context = contexts.get(vin)
            reasons = (
                ("vehicle_unknown",) if context is None else hold_reasons(campaign, context, now)
            )
            if context is None or reasons:
                await _hold(conn, campaign.id, vin, reasons, now)
                continue
            try:
                async with conn.transaction():  # a savepoint: one vehicle's race loses alone
                    commands.append(await _offer(conn, campaign, context, now))
            except asyncpg.UniqueViolationError:
                # Another campaign's offer to this car won the race (ota_campaign_vehicles'
                # one-in-flight index): wait for it to finish.
                await _hold(conn, campaign.id, vin, ("other_update_in_flight",), now)
    return commands


async def _offer(
    conn: asyncpg.Connection, campaign: Campaign, context: OfferContext, now: datetime
) -> OutgoingCommand:
    vin = context.vin
    moved = await apply(conn, campaign.id, vin, S.OFFERED, now)
    approved = not context.requires_consent
    if approved:
        moved = await apply(conn, campaign.id, vin, S.ACCEPTED, now)
    outgoing = offer_command(
        campaign, vin, attempt=moved.record.attempt, sent=0, approved=approved, now=now
    )
    await conn.execute(
        "UPDATE ota_campaign_vehicles SET requires_consent = $3, hold_reason = NULL,"
        " command_id = $4, command_approved = $5, command_at = NULL"
        " WHERE campaign_id = $1 AND vin = $2",
        campaign.id,
        vin,
        context.requires_consent,
        outgoing.command.id,
        approved,
    )
    if context.owner is not None:
        info = campaign.spec.owner_info
        payload = {
            "campaign_id": str(campaign.id),
            "campaign": campaign.spec.name,
            "vin": vin,
            "target": campaign.image.path,
            "version": campaign.image.spec.version,
            **info.to_json(),
            "requires_consent": context.requires_consent,
            # A retry is a new attempt, offered anew: the owner is told (and asked) again.
            "attempt": moved.record.attempt,
            "accept_path": f"/v1/me/vehicles/{vin}/ota/{campaign.id}/accept",
            "decline_path": f"/v1/me/vehicles/{vin}/ota/{campaign.id}/decline",
        }
        await conn.execute(
            "SELECT outbox_append($1, $2, $3, $4, $5::jsonb, $6)",
            OTA_OFFER,
            update_subject(campaign.id, vin),
            vin,
            context.owner,
            json.dumps(payload),
            now,
        )
    return outgoing


async def _hold(
    conn: asyncpg.Connection,
    campaign_id: uuid.UUID,
    vin: str,
    reasons: tuple[str, ...],
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE ota_campaign_vehicles SET hold_reason = $3, updated_at = $4"
        " WHERE campaign_id = $1 AND vin = $2",
        campaign_id,
        vin,
        ",".join(reasons),
        now,
    )


async def resends(
    pool: asyncpg.Pool,
    campaign: Campaign,
    now: datetime,
    *,
    resend_after: timedelta,
    max_commands: int,
    batch: int,
) -> list[OutgoingCommand]:
    """Approved commands for accepted updates whose car has not started (never sent: the
    broker was away; or accepted by the owner since the informing offer), and for updates
    that made no progress for ``resend_after`` (a command or a report was lost): the car then
    carries on or reports where it stands."""
    rows = await pool.fetch(
        "SELECT vin, attempt, commands_sent FROM ota_campaign_vehicles"
        " WHERE campaign_id = $1 AND status = ANY($5::text[]) AND commands_sent < $2"
        "   AND (command_at IS NULL OR NOT command_approved"
        "        OR (command_at < $3 AND updated_at < $3))"
        " ORDER BY command_at NULLS FIRST, vin LIMIT $4",
        campaign.id,
        max_commands,
        now - resend_after,
        batch,
        sorted(s.value for s in IN_FLIGHT),
    )
    return [
        offer_command(
            campaign,
            r["vin"],
            attempt=r["attempt"],
            sent=r["commands_sent"],
            approved=True,
            now=now,
        )
        for r in rows
    ]


async def mark_sent(pool: asyncpg.Pool, sent: list[OutgoingCommand], now: datetime) -> None:
    if not sent:
        return
    await pool.executemany(
        "UPDATE ota_campaign_vehicles SET command_id = $3, command_approved = $4,"
        " command_at = $5, commands_sent = commands_sent + 1"
        " WHERE campaign_id = $1 AND vin = $2",
        [(c.campaign_id, c.vin, c.command.id, c.approved, now) for c in sent],
    )
