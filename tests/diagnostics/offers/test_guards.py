"""The offer guards (``decide``): every reason it can give, the order in which the checks run
(the first that fails is the one recorded), the boundaries, and the happy path. Pure: no
database, ``now`` passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from diagnostics.offers.guards import Caps, Facts, SuppressReason, decide
from diagnostics.offers.rules import OfferRule, default_rules

NOW = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)
CAPS = Caps(per_day=2, per_week=6)
MAX_AGE_S = 120.0
DEFAULTS = dict(default_rules())

FUEL = "fuel-discount-partner"  # promotion, location-based, 80 km/h, cooldown 24 h
SERVICE = "service-booking-near-dealer"  # service message, location-based, 10 km/h
RENEWAL = "contract-renewal"  # promotion, not location-based

# Everything in order: the offer goes out.
SEND = Facts(
    has_owner=True,
    marketing_consent=True,
    location_consent=True,
    in_quiet_hours=False,
    sent_last_day=0,
    sent_last_week=0,
    rule_last_sent_at=None,
    already_offered=False,
    speed_kmh=5.0,
    trigger_age_s=3.0,
)
# Every check fails.
NOTHING_HOLDS = Facts(
    has_owner=False,
    marketing_consent=False,
    location_consent=False,
    in_quiet_hours=True,
    sent_last_day=CAPS.per_day,
    sent_last_week=CAPS.per_week,
    rule_last_sent_at=NOW - timedelta(hours=1),
    already_offered=True,
    speed_kmh=200.0,
    trigger_age_s=MAX_AGE_S + 1,
)


def rule(rule_id: str = FUEL, *, enabled: bool = True, **policy: Any) -> OfferRule:
    """A default rule as stored (version 1), with ``enabled`` and policy fields changed."""
    data = DEFAULTS[rule_id].model_dump()
    data["enabled"] = enabled
    data["policy"] |= policy
    return OfferRule.model_validate({**data, "id": rule_id, "version": 1})


def check(offer_rule: OfferRule, facts: Facts, **changes: Any) -> SuppressReason | None:
    return decide(
        offer_rule, replace(facts, **changes), now=NOW, caps=CAPS, max_trigger_age_s=MAX_AGE_S
    )


# -- the happy path -------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_id", sorted(DEFAULTS))
def test_an_eligible_offer_is_sent(rule_id: str) -> None:
    assert check(rule(rule_id), SEND) is None


def test_a_car_parked_with_unknown_speed_and_no_age_check_gets_it() -> None:
    assert check(rule(), SEND, speed_kmh=None, trigger_age_s=None) is None


# -- the order --------------------------------------------------------------------------------


def test_the_first_failing_check_names_the_reason_in_a_fixed_order() -> None:
    """From a moment where every check fails, put one thing right at a time: each step reveals
    the next reason, in the documented order, until the offer goes out."""
    steps: list[tuple[dict[str, Any], SuppressReason | None]] = [
        ({}, SuppressReason.NO_OWNER),
        ({"has_owner": True}, SuppressReason.NO_MARKETING_CONSENT),
        ({"marketing_consent": True}, SuppressReason.NO_LOCATION_CONSENT),
        ({"location_consent": True}, SuppressReason.ALREADY_OFFERED),
        ({"already_offered": False}, SuppressReason.STALE_TRIGGER),
        ({"trigger_age_s": 1.0}, SuppressReason.RULE_COOLDOWN),
        ({"rule_last_sent_at": None}, SuppressReason.FREQUENCY_CAP_DAY),
        ({"sent_last_day": 0}, SuppressReason.FREQUENCY_CAP_WEEK),
        ({"sent_last_week": 0}, SuppressReason.QUIET_HOURS),
        ({"in_quiet_hours": False}, SuppressReason.DRIVING),
        ({"speed_kmh": 0.0}, None),
    ]
    assert check(rule(enabled=False), NOTHING_HOLDS) is SuppressReason.RULE_DISABLED
    facts = NOTHING_HOLDS
    seen = []
    for changes, expected in steps:
        facts = replace(facts, **changes)
        seen.append(check(rule(), facts))
        assert seen[-1] is expected, (changes, seen)
    # Every reason of decide() came up once; not_applicable is the decider's (nothing to offer
    # after all: no partner, no slot), never the guards'.
    reachable = set(SuppressReason) - {SuppressReason.NOT_APPLICABLE, SuppressReason.RULE_DISABLED}
    assert set(seen) - {None} == reachable


# -- one test per reason ----------------------------------------------------------------------


def test_a_disabled_rule_sends_nothing_even_to_a_willing_customer() -> None:
    assert check(rule(enabled=False), SEND) is SuppressReason.RULE_DISABLED


def test_a_car_without_owner_has_nobody_to_tell() -> None:
    assert check(rule(), SEND, has_owner=False) is SuppressReason.NO_OWNER
    assert check(rule(SERVICE), SEND, has_owner=False) is SuppressReason.NO_OWNER


def test_a_promotion_needs_marketing_consent_before_anything_else_counts() -> None:
    no_consent = {"marketing_consent": False}
    assert check(rule(), SEND, **no_consent) is SuppressReason.NO_MARKETING_CONSENT
    assert check(rule(RENEWAL), SEND, **no_consent) is SuppressReason.NO_MARKETING_CONSENT
    # No consent beats caps, cooldown, quiet hours and driving: the KPIs must show consent.
    busy = {
        "sent_last_day": 99,
        "sent_last_week": 99,
        "rule_last_sent_at": NOW,
        "in_quiet_hours": True,
        "speed_kmh": 200.0,
    }
    assert check(rule(), SEND, **no_consent, **busy) is SuppressReason.NO_MARKETING_CONSENT


def test_a_service_message_needs_no_marketing_consent() -> None:
    assert check(rule(SERVICE), SEND, marketing_consent=False, speed_kmh=0.0) is None


def test_but_a_service_message_still_honours_caps_and_quiet_hours() -> None:
    service = rule(SERVICE)
    facts = replace(SEND, marketing_consent=False, speed_kmh=0.0)
    assert check(service, facts, sent_last_day=2) is SuppressReason.FREQUENCY_CAP_DAY
    assert check(service, facts, in_quiet_hours=True) is SuppressReason.QUIET_HOURS


def test_a_location_based_rule_needs_location_consent() -> None:
    for rule_id in (FUEL, SERVICE):
        reason = check(rule(rule_id), SEND, location_consent=False)
        assert reason is SuppressReason.NO_LOCATION_CONSENT, rule_id
    # A renewal does not use the car's position.
    assert check(rule(RENEWAL), SEND, location_consent=False) is None


def test_the_same_offer_goes_out_once() -> None:
    assert check(rule(), SEND, already_offered=True) is SuppressReason.ALREADY_OFFERED
    # ... before staleness and cooldown are even looked at.
    stale = {"trigger_age_s": 10_000.0, "rule_last_sent_at": NOW}
    assert check(rule(), SEND, already_offered=True, **stale) is SuppressReason.ALREADY_OFFERED


def test_a_stale_trigger_is_dropped_only_when_bound_to_the_moment() -> None:
    assert check(rule(), SEND, trigger_age_s=MAX_AGE_S + 0.001) is SuppressReason.STALE_TRIGGER
    assert check(rule(), SEND, trigger_age_s=MAX_AGE_S) is None  # at the limit: still fresh
    assert check(rule(SERVICE), SEND, trigger_age_s=3600.0) is SuppressReason.STALE_TRIGGER
    # A renewal is as good an hour later; no age (a replay) is never stale.
    assert check(rule(RENEWAL), SEND, trigger_age_s=86_400.0) is None
    assert check(rule(), SEND, trigger_age_s=None) is None
    # Stale beats the cooldown.
    late = {"trigger_age_s": 1000.0, "rule_last_sent_at": NOW}
    assert check(rule(), SEND, **late) is SuppressReason.STALE_TRIGGER


def test_the_cooldown_ends_exactly_after_its_hours() -> None:
    fuel = rule()  # 24 h
    cooldown = timedelta(hours=24)
    just_before = NOW - cooldown + timedelta(milliseconds=1)
    assert check(fuel, SEND, rule_last_sent_at=just_before) is SuppressReason.RULE_COOLDOWN
    assert check(fuel, SEND, rule_last_sent_at=NOW - cooldown) is None  # >= cooldown: send
    assert check(fuel, SEND, rule_last_sent_at=NOW - 2 * cooldown) is None
    # The rule's own cooldown, not a fixed one.
    assert check(rule(cooldown_h=0.5), SEND, rule_last_sent_at=NOW - timedelta(hours=1)) is None
    # Cooldown beats the caps.
    capped = {"sent_last_day": 99, "sent_last_week": 99}
    reason = check(fuel, SEND, rule_last_sent_at=just_before, **capped)
    assert reason is SuppressReason.RULE_COOLDOWN


def test_the_daily_cap_counts_offers_of_every_rule() -> None:
    assert check(rule(), SEND, sent_last_day=CAPS.per_day - 1) is None
    assert check(rule(), SEND, sent_last_day=CAPS.per_day) is SuppressReason.FREQUENCY_CAP_DAY
    # The day's cap is named before the week's.
    both = {"sent_last_day": CAPS.per_day, "sent_last_week": CAPS.per_week}
    assert check(rule(), SEND, **both) is SuppressReason.FREQUENCY_CAP_DAY


def test_the_weekly_cap() -> None:
    assert check(rule(), SEND, sent_last_week=CAPS.per_week - 1) is None
    reason = check(rule(), SEND, sent_last_week=CAPS.per_week)
    assert reason is SuppressReason.FREQUENCY_CAP_WEEK
    # Caps beat quiet hours.
    reason = check(rule(), SEND, sent_last_week=CAPS.per_week, in_quiet_hours=True)
    assert reason is SuppressReason.FREQUENCY_CAP_WEEK


def test_zero_caps_send_nothing() -> None:
    none_allowed = Caps(per_day=0, per_week=0)
    reason = decide(rule(), SEND, now=NOW, caps=none_allowed, max_trigger_age_s=MAX_AGE_S)
    assert reason is SuppressReason.FREQUENCY_CAP_DAY


def test_caps_refuse_negative_numbers() -> None:
    with pytest.raises(ValueError, match="negative"):
        Caps(per_day=-1)


def test_quiet_hours_drop_the_offer() -> None:
    assert check(rule(), SEND, in_quiet_hours=True) is SuppressReason.QUIET_HOURS
    # Quiet hours beat driving.
    reason = check(rule(), SEND, in_quiet_hours=True, speed_kmh=200.0)
    assert reason is SuppressReason.QUIET_HOURS


def test_driving_above_the_rule_s_speed_limit() -> None:
    fuel = rule()  # max_speed_kmh 80
    assert check(fuel, SEND, speed_kmh=80.0) is None  # at the limit: fine
    assert check(fuel, SEND, speed_kmh=80.1) is SuppressReason.DRIVING
    assert check(rule(SERVICE), SEND, speed_kmh=30.0) is SuppressReason.DRIVING  # 10 km/h


def test_in_car_while_driving_allows_any_speed() -> None:
    allowed = rule(in_car_while_driving=True)
    assert check(allowed, SEND, speed_kmh=200.0) is None
    # It lifts the speed limit only: quiet hours still hold.
    assert check(allowed, SEND, speed_kmh=200.0, in_quiet_hours=True) is (
        SuppressReason.QUIET_HOURS
    )
