"""The owner's answer to an offer, and an operator's retry of a failed update.

Only the vehicle's current owner may accept or decline its offer (anyone else is told there
is no such offer, as for any object they may not see). Accepting moves the update to
``accepted``; the scheduler then sends the car its go-ahead. Declining cancels this vehicle's
update (code ``declined_by_owner``): it does not count as a failure of the wave.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from ota.campaigns.errors import UpdateNotFoundError
from ota.campaigns.topics import DECLINED_BY_OWNER
from ota.campaigns.updates import VehicleUpdate, apply, load_update
from ota.status_machine import UpdateStatus


async def owner_decision(
    pool: asyncpg.Pool,
    *,
    customer_id: uuid.UUID,
    vin: str,
    campaign_id: uuid.UUID,
    accept: bool,
    now: datetime,
) -> VehicleUpdate:
    async with pool.acquire() as conn, conn.transaction():
        owner = await conn.fetchval(
            "SELECT customer_id FROM vehicle_ownership WHERE vin = $1 AND ended_at IS NULL", vin
        )
        if owner != customer_id:
            raise UpdateNotFoundError(
                f"no offer of campaign {campaign_id} for {vin}",
                vin=vin,
                campaign_id=str(campaign_id),
            )
        if accept:
            await apply(conn, campaign_id, vin, UpdateStatus.ACCEPTED, now)
        else:
            await apply(conn, campaign_id, vin, UpdateStatus.CANCELLED, now, code=DECLINED_BY_OWNER)
        found = await load_update(conn, campaign_id, vin)
        assert found is not None
        return found


async def retry(
    pool: asyncpg.Pool, *, vin: str, campaign_id: uuid.UUID, now: datetime
) -> VehicleUpdate:
    """A failed or rolled-back update becomes ``assigned`` again (attempt + 1): the scheduler
    offers it anew under the campaign's window, preconditions and consent rules."""
    async with pool.acquire() as conn, conn.transaction():
        await apply(conn, campaign_id, vin, UpdateStatus.ASSIGNED, now)
        await conn.execute(
            "UPDATE ota_campaign_vehicles SET commands_sent = 0, command_at = NULL,"
            " command_approved = false WHERE campaign_id = $1 AND vin = $2",
            campaign_id,
            vin,
        )
        found = await load_update(conn, campaign_id, vin)
        assert found is not None
        return found
