"""What an offer says and links to, per rule kind: the partner and station of a discount, the
workshop slot of a booking offer, the contract of a renewal, the dealer of a test drive. None
when there is nothing to offer after all (a disabled partner, no free slot): the decision is then
recorded as ``not_applicable``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from api.service.slot_search import candidates, with_free_slots
from diagnostics.offers.rules import (
    ContractRenewalParams,
    FeatureTrialParams,
    LowEnergyParams,
    ModelRecommendationParams,
    OfferRule,
    ServiceNearDealerParams,
)

if TYPE_CHECKING:
    from api.offers.decider import TriggerPayload

#: Workshops this close to the dealer's area count as "near" for a booking offer.
WORKSHOP_RADIUS_KM = 10.0
SLOT_SEARCH_DAYS = 7


@dataclass(frozen=True, slots=True)
class OfferContent:
    title: str
    partner_id: str | None = None
    place_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def details_json(self) -> str:
        return json.dumps(self.details, default=str)

    def payload(self) -> dict[str, Any]:
        """For ``offer.created``: what the notifier's template renders."""
        return {"title": self.title, "place_id": self.place_id, "details": self.details}


async def compose(
    conn: asyncpg.Connection, rule: OfferRule, trigger: TriggerPayload, at: datetime
) -> OfferContent | None:
    params = rule.params
    details = dict(trigger.details)
    if isinstance(params, LowEnergyParams):
        partner = await conn.fetchrow(
            "SELECT name FROM offer_partners WHERE id = $1 AND disabled_at IS NULL",
            params.partner_id,
        )
        if partner is None:
            return None
        details.update(discount=params.discount, partner_name=partner["name"])
        return OfferContent(
            title=f"{params.discount} at {details.get('place_name', trigger.place_id)}",
            partner_id=params.partner_id,
            place_id=trigger.place_id,
            details=details,
        )
    if isinstance(params, ServiceNearDealerParams):
        return await _booking_offer(conn, trigger, details, at)
    if isinstance(params, ContractRenewalParams):
        return OfferContent(
            title=f"Renew your {details.get('contract', 'contract')}",
            place_id=trigger.place_id,
            details=details,
        )
    if isinstance(params, ModelRecommendationParams):
        if trigger.place_id is None:
            return None  # no dealer to drive it at
        details["model"] = params.recommended_model
        return OfferContent(
            title=f"Test drive the {params.recommended_model}",
            place_id=trigger.place_id,
            details=details,
        )
    assert isinstance(params, FeatureTrialParams)
    details.update(feature=params.feature, trial_days=params.trial_days)
    return OfferContent(
        title=f"Try {params.feature.replace('_', ' ')} free for {params.trial_days} days",
        details=details,
    )


async def _booking_offer(
    conn: asyncpg.Connection, trigger: TriggerPayload, details: dict[str, Any], at: datetime
) -> OfferContent | None:
    """The earliest free slot at the workshop nearest to the dealer the car stopped at."""
    lat, lon = details.get("place_lat"), details.get("place_lon")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    found = await candidates(
        conn,
        lat=float(lat),
        lon=float(lon),
        skills=[],
        radius_km=WORKSHOP_RADIUS_KM,
        with_vans=False,
    )
    if not found:
        return None
    start = at + timedelta(hours=2)
    for option in await with_free_slots(
        conn, found[:3], start=start, end=start + timedelta(days=SLOT_SEARCH_DAYS)
    ):
        if option.slots:
            slot = option.slots[0]
            centre = option.candidate.provider.centre
            details.update(
                centre_id=centre.id,
                centre_name=centre.name,
                slot_start=slot.start.isoformat(),
                slot_end=slot.end.isoformat(),
                book_path="/v1/me/bookings",
            )
            return OfferContent(
                title=f"Service at {centre.name}", place_id=trigger.place_id, details=details
            )
    return None
