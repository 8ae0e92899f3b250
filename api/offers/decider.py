"""The ``offers`` outbox consumer: decides on every ``offer.triggered`` event exactly once.

In the consumer's transaction it finds the car's owner at the trigger's time, locks the
customer's row (so two decisions for one customer serialise and a cap can never be exceeded,
whatever runs beside it), gathers the facts the guards need, records the decision with its
reason, and for a sent offer writes the offer with a unique code and appends ``offer.created``
for the notifier. A crash anywhere rolls all of it back and the event is decided again.

Decision time is the trigger's event time (the sample's ``ts``): caps, cooldowns and quiet
hours are about when the customer would have been told, and a replayed backlog decides the same
way. The wall clock only judges staleness (``max_trigger_age_s``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from pydantic import BaseModel, ConfigDict

from api.notifications.notifier import customer_zone
from api.notifications.quiet_hours import quiet_hours_of, quiet_until
from api.offers.codes import new_code
from api.offers.content import OfferContent, compose
from diagnostics.offers.config_store import RuleNotFoundError, get_rule
from diagnostics.offers.guards import Caps, Facts, SuppressReason, decide
from diagnostics.offers.rules import OfferRule
from diagnostics.offers.settings import DEFAULT_MAX_TRIGGER_AGE_S, OfferSettings
from diagnostics.offers.topics import OFFER_CREATED, OFFER_TRIGGERED
from diagnostics.outbox import OutboxConsumer, OutboxEvent, append
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms

log = logging.getLogger(__name__)

CONSUMER_NAME = "offers"


class TriggerPayload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    rule_id: str
    rule_version: int
    subject_key: str
    place_id: str | None = None
    speed_kmh: float | None = None
    triggered_at_ms: int
    detected_at_ms: int
    details: dict[str, Any] = {}


@dataclass
class DeciderStats:
    sent: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    unknown_rule: int = 0


_OWNER = """
SELECT c.id, c.timezone, c.quiet_hours_start, c.quiet_hours_end
FROM vehicle_ownership o JOIN customers c ON c.id = o.customer_id
WHERE o.vin = $1 AND o.started_at <= $2 AND (o.ended_at IS NULL OR o.ended_at > $2)
"""

# Either side of the trigger's time: decisions do not arrive in event-time order (guards.Facts).
_COUNTS = """
SELECT count(*) FILTER (WHERE triggered_at > $2::timestamptz - interval '1 day'
                          AND triggered_at < $2::timestamptz + interval '1 day') AS day,
       count(*) AS week
FROM offers WHERE customer_id = $1
  AND triggered_at > $2::timestamptz - interval '7 days'
  AND triggered_at < $2::timestamptz + interval '7 days'
"""
_NEAREST_OF_RULE = """
SELECT triggered_at FROM offers WHERE customer_id = $1 AND rule_id = $2
ORDER BY abs(extract(epoch FROM triggered_at - $3::timestamptz)) LIMIT 1
"""


class OfferDecider:
    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        *,
        caps: Caps | None = None,
        max_trigger_age_s: float | None = DEFAULT_MAX_TRIGGER_AGE_S,
    ) -> None:
        """``max_trigger_age_s`` None: no staleness check (a replay of old data, the eval)."""
        self._clock = clock
        self._caps = caps or Caps()
        self._max_age_s = max_trigger_age_s
        self.stats = DeciderStats()

    async def handle(self, conn: asyncpg.Connection, event: OutboxEvent) -> None:
        if event.topic != OFFER_TRIGGERED or event.vin is None:
            return
        trigger = TriggerPayload.model_validate(event.payload)
        try:
            rule = await get_rule(conn, trigger.rule_id)
        except RuleNotFoundError:
            self.stats.unknown_rule += 1
            log.warning("offers: trigger for unknown rule %s", trigger.rule_id)
            return
        await self.decide(conn, event.vin, rule, trigger)

    async def decide(
        self, conn: asyncpg.Connection, vin: str, rule: OfferRule, trigger: TriggerPayload
    ) -> UUID | None:
        at = utc_from_ms(trigger.triggered_at_ms)
        decided_at = utc_from_ms(self._clock.now_ms())
        owner = await conn.fetchrow(_OWNER, vin, at)
        facts = await self._facts(
            conn, vin=vin, rule=rule, trigger=trigger, owner=owner, at=at, decided_at=decided_at
        )
        customer_id: UUID | None = owner["id"] if owner is not None and facts.has_owner else None
        reason = decide(
            rule,
            facts,
            now=at,
            caps=self._caps,
            max_trigger_age_s=self._max_age_s if self._max_age_s is not None else float("inf"),
        )
        content: OfferContent | None = None
        if reason is None:
            content = await compose(conn, rule, trigger, at)
            if content is None:
                reason = SuppressReason.NOT_APPLICABLE
        offer_id = None
        if reason is None and content is not None and customer_id is not None:
            offer_id = await self._send(
                conn,
                vin=vin,
                customer_id=customer_id,
                rule=rule,
                trigger=trigger,
                content=content,
                at=at,
                decided_at=decided_at,
            )
            self.stats.sent += 1
        else:
            assert reason is not None
            self.stats.suppressed[reason.value] = self.stats.suppressed.get(reason.value, 0) + 1
        await conn.execute(
            """
            INSERT INTO offer_decisions (rule_id, rule_version, campaign, vin, customer_id,
                subject_key, outcome, reason, offer_id, triggered_at, detected_at, decided_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            """,
            rule.id,
            rule.version,
            rule.campaign,
            vin,
            customer_id,
            trigger.subject_key,
            "sent" if offer_id is not None else "suppressed",
            None if offer_id is not None else reason,
            offer_id,
            at,
            utc_from_ms(trigger.detected_at_ms),
            decided_at,
        )
        return offer_id

    async def _facts(
        self,
        conn: asyncpg.Connection,
        *,
        vin: str,
        rule: OfferRule,
        trigger: TriggerPayload,
        owner: asyncpg.Record | None,
        at: datetime,
        decided_at: datetime,
    ) -> Facts:
        age_s = (decided_at - at).total_seconds() if self._max_age_s is not None else None
        if owner is None:
            return Facts(False, False, False, False, 0, 0, None, False, trigger.speed_kmh, age_s)
        customer_id = owner["id"]
        # Serialise every decision about this customer: the counts below stay true until commit.
        locked = await conn.fetchval(
            "SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", customer_id
        )
        if locked is None:  # erased since the owner was read
            return Facts(False, False, False, False, 0, 0, None, False, trigger.speed_kmh, age_s)
        consents = {
            r["purpose"]: r["granted"]
            for r in await conn.fetch(
                "SELECT purpose, granted FROM customer_consents WHERE customer_id = $1",
                customer_id,
            )
        }
        counts = await conn.fetchrow(_COUNTS, customer_id, at)
        last_sent = await conn.fetchval(_NEAREST_OF_RULE, customer_id, rule.id, at)
        already = await conn.fetchval(
            "SELECT 1 FROM offers WHERE rule_id = $1 AND vin = $2 AND subject_key = $3"
            " AND expires_at > $4 LIMIT 1",
            rule.id,
            vin,
            trigger.subject_key,
            at,
        )
        quiet = quiet_hours_of(
            owner["quiet_hours_start"], owner["quiet_hours_end"], customer_zone(owner["timezone"])
        )
        return Facts(
            has_owner=True,
            marketing_consent=bool(consents.get("marketing", False)),
            location_consent=bool(consents.get("location", False)),
            in_quiet_hours=quiet_until(quiet, at) is not None,
            sent_last_day=int(counts["day"]),
            sent_last_week=int(counts["week"]),
            rule_last_sent_at=last_sent,
            already_offered=already is not None,
            speed_kmh=trigger.speed_kmh,
            trigger_age_s=age_s,
        )

    async def _send(
        self,
        conn: asyncpg.Connection,
        *,
        vin: str,
        customer_id: UUID,
        rule: OfferRule,
        trigger: TriggerPayload,
        content: OfferContent,
        at: datetime,
        decided_at: datetime,
    ) -> UUID:
        offer_id = uuid4()
        expires_at = at + timedelta(hours=rule.policy.valid_h)
        code = await new_code(conn)
        await conn.execute(
            """
            INSERT INTO offers (id, rule_id, rule_version, campaign, kind, category, vin,
                customer_id, subject_key, code, partner_id, place_id, title, details,
                triggered_at, detected_at, decided_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb,
                $15, $16, $17, $18)
            """,
            offer_id,
            rule.id,
            rule.version,
            rule.campaign,
            rule.kind.value,
            rule.policy.category.value,
            vin,
            customer_id,
            trigger.subject_key,
            code,
            content.partner_id,
            content.place_id,
            content.title,
            content.details_json(),
            at,
            utc_from_ms(trigger.detected_at_ms),
            decided_at,
            expires_at,
        )
        await append(
            conn,
            OFFER_CREATED,
            f"offer:{offer_id}",
            {
                "offer_id": str(offer_id),
                "rule_id": rule.id,
                "campaign": rule.campaign,
                "kind": rule.kind.value,
                "category": rule.policy.category.value,
                "vin": vin,
                "code": code,
                "expires_at": expires_at.isoformat(),
                **content.payload(),
            },
            occurred_at=at,
            vin=vin,
            customer_id=customer_id,
        )
        return offer_id


def offer_decider(pool: asyncpg.Pool, decider: OfferDecider | None = None) -> OutboxConsumer:
    """The ``offers`` outbox consumer; the runtime runs ``consumer.run(stop)``."""
    return OutboxConsumer(pool, CONSUMER_NAME, decider or OfferDecider())


def decider_from_settings(settings: OfferSettings, clock: Clock = SYSTEM_CLOCK) -> OfferDecider:
    """``FLEETLINK_OFFERS_*``: the caps and the staleness limit."""
    return OfferDecider(
        clock,
        caps=Caps(settings.max_per_day, settings.max_per_week),
        max_trigger_age_s=settings.max_trigger_age_s,
    )
