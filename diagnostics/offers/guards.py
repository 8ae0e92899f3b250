"""Whether an eligible offer may be sent: consent, caps, quiet hours, driving. Pure: the caller
gathers the facts (in the decision's transaction) and passes ``now``; this module only decides,
so every rule of the policy is tested without a database.

The checks run in a fixed order and the first that fails names the reason recorded with the
decision, so the KPIs can say *why* offers were not sent:

1. ``rule_disabled``: the rule was switched off after the trigger.
2. ``no_owner``: nobody owns the car (dealer stock); there is nobody to tell.
3. ``no_marketing_consent``: every promotion needs it (GDPR art. 6(1)(a), ePrivacy art. 13);
   service messages do not.
4. ``no_location_consent``: a rule that used the car's position needs it as well.
5. ``already_offered``: this very offer (same rule, car and subject) went out before.
6. ``stale_trigger``: the data is too old for a moment-bound offer (a car that was offline
   sends its backlog; a discount for the station it passed an hour ago helps nobody).
7. ``rule_cooldown``: the same rule reached this customer within its cooldown (either side).
8. ``frequency_cap_day`` / ``frequency_cap_week``: offers of all rules to one customer.
9. ``quiet_hours``: the customer's quiet period; a moment-bound offer is dropped, not queued.
10. ``driving``: faster than the rule's speed limit and its in-car policy does not allow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from diagnostics.offers.rules import STREAM_KINDS, OfferRule
from diagnostics.offers.settings import DEFAULT_MAX_PER_DAY, DEFAULT_MAX_PER_WEEK


class SuppressReason(StrEnum):
    RULE_DISABLED = "rule_disabled"
    NO_OWNER = "no_owner"
    NO_MARKETING_CONSENT = "no_marketing_consent"
    NO_LOCATION_CONSENT = "no_location_consent"
    ALREADY_OFFERED = "already_offered"
    STALE_TRIGGER = "stale_trigger"
    RULE_COOLDOWN = "rule_cooldown"
    FREQUENCY_CAP_DAY = "frequency_cap_day"
    FREQUENCY_CAP_WEEK = "frequency_cap_week"
    QUIET_HOURS = "quiet_hours"
    DRIVING = "driving"
    #: Nothing to offer after all: the partner is disabled, no dealer or slot was found.
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True, slots=True)
class Caps:
    """Offers of all rules one customer may get: per rolling 24 hours and 7 days."""

    per_day: int = DEFAULT_MAX_PER_DAY
    per_week: int = DEFAULT_MAX_PER_WEEK

    def __post_init__(self) -> None:
        if self.per_day < 0 or self.per_week < 0:
            raise ValueError(f"caps must not be negative: {self}")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the decision knows about the customer and the moment. Decisions are not taken in
    event-time order (a second car's late sample, a sweep), so the counts are of offers to this
    customer within a window *on either side* of ``now`` (24 hours, 7 days), and
    ``rule_last_sent_at`` is the same rule's offer nearest to ``now``, before or after: then no
    rolling window holds more than the cap, whatever the order."""

    has_owner: bool
    marketing_consent: bool
    location_consent: bool
    in_quiet_hours: bool
    sent_last_day: int
    sent_last_week: int
    rule_last_sent_at: datetime | None
    already_offered: bool
    speed_kmh: float | None
    #: How old the triggering data is (wall clock minus event time); None: not checked.
    trigger_age_s: float | None


def decide(
    rule: OfferRule,
    facts: Facts,
    *,
    now: datetime,
    caps: Caps,
    max_trigger_age_s: float,
) -> SuppressReason | None:
    """None: send it. Otherwise the first reason not to."""
    if not rule.enabled:
        return SuppressReason.RULE_DISABLED
    if not facts.has_owner:
        return SuppressReason.NO_OWNER
    if rule.promotion and not facts.marketing_consent:
        return SuppressReason.NO_MARKETING_CONSENT
    if rule.location_based and not facts.location_consent:
        return SuppressReason.NO_LOCATION_CONSENT
    if facts.already_offered:
        return SuppressReason.ALREADY_OFFERED
    moment_bound = rule.kind in STREAM_KINDS  # a periodic rule's trigger is never stale
    age_s = facts.trigger_age_s
    if moment_bound and age_s is not None and age_s > max_trigger_age_s:
        return SuppressReason.STALE_TRIGGER
    cooldown = timedelta(hours=rule.policy.cooldown_h)
    nearest = facts.rule_last_sent_at
    if nearest is not None and abs(now - nearest) < cooldown:
        return SuppressReason.RULE_COOLDOWN
    if facts.sent_last_day >= caps.per_day:
        return SuppressReason.FREQUENCY_CAP_DAY
    if facts.sent_last_week >= caps.per_week:
        return SuppressReason.FREQUENCY_CAP_WEEK
    if facts.in_quiet_hours:
        return SuppressReason.QUIET_HOURS
    speed = facts.speed_kmh
    too_fast = speed is not None and speed > rule.policy.max_speed_kmh
    if too_fast and not rule.policy.in_car_while_driving:
        return SuppressReason.DRIVING
    return None
