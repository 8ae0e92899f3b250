"""Outbox topics OTA appends (ADR 0007) and the result codes the backend itself sets."""

from __future__ import annotations

import uuid
from typing import Final

#: To the owner (the customer app notification): an update is offered, with what they need to
#: decide (purpose, duration, functions unavailable) and whether their consent is required.
OTA_OFFER: Final = "ota.offer"
#: To the owner: how an update of their car ended (``installed``, ``failed``, ``rolled_back``);
#: the notifier tells only an owner who heard of the offer.
UPDATE_RESULT: Final = "ota.update_result"
#: For operators: a campaign halted itself (its failure threshold was passed).
CAMPAIGN_HALTED: Final = "ota.campaign_halted"

#: ``result_code`` of updates withdrawn because their campaign was cancelled.
CAMPAIGN_CANCELLED: Final = "campaign_cancelled"
#: ``result_code`` of an offer the owner declined.
DECLINED_BY_OWNER: Final = "declined_by_owner"


def update_subject(campaign_id: uuid.UUID, vin: str) -> str:
    """The outbox subject of one vehicle's update in one campaign (its offer and result)."""
    return f"ota_update:{campaign_id}:{vin}"
