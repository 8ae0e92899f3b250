"""Templates for software updates over the air (``ota.rollout_offers``, ``ota.update_results``):
``ota.offer`` tells the owner what an update is for, how long it takes and what does not work
meanwhile (UN R156 7.1.2.4, 7.2.2.1.2), and asks for their answer unless they consented to
automatic installs; ``ota.update_result`` tells them how it ended. All informational.

The campaign's ``purpose`` and ``functions_unavailable`` are its operator's words, in one
language: they are shown as written, in every language, since they are what the owner must be
told. One notification per vehicle, campaign and attempt: a command resent to the car tells
nothing new, an operator's retry (a new attempt, to be accepted again) does.
"""

from __future__ import annotations

from typing import Literal
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
from api.notifications.texts import text
from diagnostics.outbox import OutboxEvent
from ota.campaigns.topics import OTA_OFFER, UPDATE_RESULT

#: The owner's answer (``api/routes/ota_campaigns.py``).
ACCEPT_PATH = "/v1/me/vehicles/{vin}/ota/{campaign_id}/accept"
DECLINE_PATH = "/v1/me/vehicles/{vin}/ota/{campaign_id}/decline"


class OtaOfferPayload(BaseModel):
    """The ``ota.offer`` event of ``ota.rollout_offers``; fields not needed here are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    campaign_id: UUID
    campaign: str = ""
    vin: str
    version: str
    purpose: str
    duration_min: int
    functions_unavailable: list[str] = []
    requires_consent: bool
    attempt: int = 1  # events from before attempts were recorded: the first


class OtaResultPayload(BaseModel):
    """The ``ota.update_result`` event of ``ota.update_results``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    campaign_id: UUID
    campaign: str = ""
    vin: str
    version: str
    status: Literal["installed", "failed", "rolled_back"]
    attempt: int = 1
    code: str | None = None


def _sentence(words: str) -> str:
    words = words.strip()
    return words if not words or words[-1] in ".!?" else f"{words}."


class OtaOfferTemplate:
    """The owner asked (consent needed) or informed (automatic install)."""

    def render(self, event: OutboxEvent, context: RenderContext) -> Draft:
        offer = parse_payload(OtaOfferPayload, event)
        lang = context.language
        parts = [
            _sentence(offer.purpose),
            text("ota.offer.duration", lang, version=offer.version, minutes=offer.duration_min),
        ]
        functions = [f.strip() for f in offer.functions_unavailable if f.strip()]
        if functions:
            parts.append(text("ota.offer.unavailable", lang, functions=", ".join(functions)))
        parts.append(text("ota.offer.ask" if offer.requires_consent else "ota.offer.auto", lang))
        links = {"vin": offer.vin, "campaign_id": offer.campaign_id}
        return Draft(
            category=Category.INFORMATIONAL,
            title=text(
                "ota.offer.title.consent" if offer.requires_consent else "ota.offer.title.auto",
                lang,
            ),
            body=" ".join(p for p in parts if p),
            data={
                "campaign_id": str(offer.campaign_id),
                "campaign": offer.campaign,
                "version": offer.version,
                "requires_consent": offer.requires_consent,
                "attempt": offer.attempt,
                "duration_min": offer.duration_min,
                "functions_unavailable": functions,
                # The app's buttons; none when the install needs no answer.
                "accept_path": ACCEPT_PATH.format(**links) if offer.requires_consent else None,
                "decline_path": DECLINE_PATH.format(**links) if offer.requires_consent else None,
            },
            dedupe_key=f"{default_dedupe_key(event)}|a{offer.attempt}",
        )


class OtaResultTemplate:
    """How the update ended, told only to an owner who heard of its offer (the previous owner's
    update finishing after a transfer means nothing to the new one)."""

    def render(self, event: OutboxEvent, context: RenderContext) -> Draft | None:
        result = parse_payload(OtaResultPayload, event)
        if not any(t.topic == OTA_OFFER for t in context.told):
            return None
        lang = context.language
        title = "installed" if result.status == "installed" else "failed"
        return Draft(
            category=Category.INFORMATIONAL,
            title=text(f"ota.update_result.{title}.title", lang),
            body=text(f"ota.update_result.{result.status}.body", lang, version=result.version),
            data={
                "campaign_id": str(result.campaign_id),
                "campaign": result.campaign,
                "version": result.version,
                "status": result.status,
                "code": result.code,
                "attempt": result.attempt,
            },
            dedupe_key=f"{default_dedupe_key(event)}|a{result.attempt}",
        )


def register_ota_templates(registry: TemplateRegistry) -> None:
    registry.register(OTA_OFFER, OtaOfferTemplate())
    registry.register(UPDATE_RESULT, OtaResultTemplate())
