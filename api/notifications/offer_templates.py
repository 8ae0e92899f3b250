"""The template for ``offer.created``: the offer in the customer's language, with its code, and
the links the app needs (offer id, booking slot). Category ``promotion`` for promotions (quiet
hours hold back the intrusive channels), ``informational`` for a service booking offer."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from api.notifications.model import Category
from api.notifications.templates import (
    Draft,
    RenderContext,
    TemplateRegistry,
    default_dedupe_key,
    parse_payload,
)
from api.notifications.texts import format_when, text
from diagnostics.offers.rules import RuleKind
from diagnostics.offers.topics import OFFER_CREATED
from diagnostics.outbox import OutboxEvent


class OfferCreatedPayload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    offer_id: UUID
    rule_id: str
    campaign: str
    kind: RuleKind
    category: str
    vin: str
    code: str
    expires_at: datetime
    title: str
    place_id: str | None = None
    details: dict[str, Any] = {}


class OfferCreatedTemplate:
    def render(self, event: OutboxEvent, context: RenderContext) -> Draft:
        offer = parse_payload(OfferCreatedPayload, event)
        lang, zone, d = context.language, context.timezone, offer.details
        until = format_when(offer.expires_at, zone, lang)
        if offer.kind is RuleKind.LOW_ENERGY_NEAR_STATION:
            place = str(d.get("place_name", offer.place_id))
            discount = str(d.get("discount", ""))
            km = f"{float(d.get('distance_m', 0)) / 1000:.1f}"
            title = text("offer.low_energy.title", lang, discount=discount, place=place)
            energy = "charge" if d.get("energy") == "charge" else "fuel"
            body = text(
                f"offer.low_energy.body.{energy}",
                lang,
                place=place,
                km=km,
                code=offer.code,
                discount=discount,
                until=until,
            )
        elif offer.kind is RuleKind.SERVICE_NEAR_DEALER:
            title = text("offer.service.title", lang)
            slot = d.get("slot_start")
            when = format_when(datetime.fromisoformat(slot), zone, lang) if slot else "-"
            body = text("offer.service.body", lang, centre=d.get("centre_name", ""), when=when)
        elif offer.kind is RuleKind.CONTRACT_RENEWAL:
            title = text("offer.renewal.title", lang)
            ends = d.get("ends_at")
            when = str(ends)[:10] if ends else "-"
            contract = str(d.get("plan") or d.get("feature") or d.get("contract", ""))
            body = text("offer.renewal.body", lang, contract=contract, when=when, code=offer.code)
        elif offer.kind is RuleKind.MODEL_RECOMMENDATION:
            model = str(d.get("model", ""))
            title = text("offer.test_drive.title", lang, model=model)
            body = text(
                "offer.test_drive.body",
                lang,
                km=d.get("mean_daily_km", "-"),
                model=model,
                dealer=d.get("place_name") or offer.place_id or "-",
                code=offer.code,
            )
        else:
            feature = str(d.get("feature", "")).replace("_", " ")
            days = d.get("trial_days", "")
            title = text("offer.trial.title", lang, feature=feature, days=days)
            body = text("offer.trial.body", lang, feature=feature, code=offer.code)
        category = Category.PROMOTION if offer.category == "promotion" else Category.INFORMATIONAL
        return Draft(
            category=category,
            title=title,
            body=body,
            data={
                "offer_id": str(offer.offer_id),
                "code": offer.code,
                "campaign": offer.campaign,
                "kind": offer.kind.value,
                "expires_at": offer.expires_at.isoformat(),
                "place_id": offer.place_id,
                "slot_start": d.get("slot_start"),
                "centre_id": d.get("centre_id"),
            },
            dedupe_key=default_dedupe_key(event),
        )


def register_offer_templates(registry: TemplateRegistry) -> None:
    registry.register(OFFER_CREATED, OfferCreatedTemplate())
