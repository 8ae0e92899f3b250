"""Telling the owner how an update of their car ended: ``installed``, ``failed`` or
``rolled_back``, reached through the car's report, appends an ``ota.update_result`` outbox
event (ADR 0007) in the report's transaction. The owner was told of the offer
(``ota.offer``, :mod:`ota.rollout_offers`); this closes that story.

Only for a car with a current owner, as the offer: a car without one is the OEM's own. The
notifier decides whether to tell (the owner must have heard of the offer) and deduplicates
per attempt, so a duplicate report or a redelivered event tells nothing twice.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Final

import asyncpg

from ota.campaigns.topics import UPDATE_RESULT, update_subject
from ota.status_machine import FAILURES, UpdateRecord, UpdateStatus

#: The statuses the owner hears about: how the attempt ended on the car (a cancellation is
#: the owner's own decline or an operator's withdrawal before anything happened to the car).
RESULTS: Final = FAILURES | {UpdateStatus.INSTALLED}

_FACTS = """
SELECT c.name, c.target_path, c.target_version, o.customer_id
FROM ota_campaigns c
JOIN vehicle_ownership o ON o.vin = $2 AND o.ended_at IS NULL
WHERE c.id = $1
"""


async def append_update_result(
    conn: asyncpg.Connection,
    campaign_id: uuid.UUID,
    vin: str,
    record: UpdateRecord,
    now: datetime,
) -> bool:
    """Append ``ota.update_result`` if ``record`` is a result and the car has an owner;
    call it in the transaction that stored ``record``. Returns whether an event was added."""
    if record.status not in RESULTS:
        return False
    facts = await conn.fetchrow(_FACTS, campaign_id, vin)
    if facts is None:
        return False
    payload = {
        "campaign_id": str(campaign_id),
        "campaign": facts["name"],
        "vin": vin,
        "target": facts["target_path"],
        "version": facts["target_version"],
        "status": record.status.value,
        "attempt": record.attempt,
        "code": record.code,
    }
    await conn.execute(
        "SELECT outbox_append($1, $2, $3, $4, $5::jsonb, $6)",
        UPDATE_RESULT,
        update_subject(campaign_id, vin),
        vin,
        facts["customer_id"],
        json.dumps(payload),
        now,
    )
    return True
