"""Offer rules: data, not code. Each rule is one of five kinds with its own parameters, a policy
(promotion or service message, speed limit for in-car delivery, cooldown, validity) and a
campaign it counts towards in the KPIs. Rules are stored as JSON (``offer_rules``), versioned on
every edit, and validated here on the way in and out.

The kinds:

- ``low_energy_near_station``: fuel or state of charge below a level and a partner station
  within reach on the current heading -> discount code for that station.
- ``service_near_dealer``: service due (or an open maintenance alert) and the car enters a
  dealer's or service centre's area -> booking offer with a slot.
- ``contract_renewal``: warranty, subscription or entitlement ending within N days -> renewal.
- ``model_recommendation``: how the car is really driven (daily distance, trip lengths) fits a
  model better -> test drive at the nearest dealer.
- ``feature_trial``: conditions where the owner would benefit from a feature they lack (cold
  weather and no heated seats) -> free trial.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.places import PlaceKind

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,63}$"
#: Free text (names, the discount): no control characters. PostgreSQL's jsonb cannot hold NUL
#: (``\u0000``): such a rule would fail to store with a 500 instead of a 422.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"


class RuleKind(StrEnum):
    LOW_ENERGY_NEAR_STATION = "low_energy_near_station"
    SERVICE_NEAR_DEALER = "service_near_dealer"
    CONTRACT_RENEWAL = "contract_renewal"
    MODEL_RECOMMENDATION = "model_recommendation"
    FEATURE_TRIAL = "feature_trial"


#: Kinds the stream engine evaluates on every position; the others run as periodic sweeps.
STREAM_KINDS = frozenset({RuleKind.LOW_ENERGY_NEAR_STATION, RuleKind.SERVICE_NEAR_DEALER})
#: Kinds that use the car's position: they also need the owner's location consent.
LOCATION_KINDS = STREAM_KINDS | {RuleKind.MODEL_RECOMMENDATION}


class OfferCategory(StrEnum):
    """``promotion`` needs marketing consent; ``service`` (a booking offer for a car that needs
    service) is the customer's own business and does not, but still honours caps and quiet
    hours."""

    PROMOTION = "promotion"
    SERVICE = "service"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Policy(_Strict):
    category: OfferCategory = OfferCategory.PROMOTION
    #: Above this speed the offer is not shown in the car (driver distraction) unless
    #: ``in_car_while_driving``; it is then suppressed (``driving``) rather than sent later,
    #: because a location offer is worth nothing an hour on.
    max_speed_kmh: float = Field(default=10.0, ge=0, le=300)
    in_car_while_driving: bool = False
    #: The same rule reaches one customer at most once per cooldown.
    cooldown_h: float = Field(default=24.0, ge=0, le=24 * 365)
    #: How long the code (or the offer) stays valid.
    valid_h: float = Field(default=48.0, gt=0, le=24 * 365)


class LowEnergyParams(_Strict):
    kind: Literal[RuleKind.LOW_ENERGY_NEAR_STATION] = RuleKind.LOW_ENERGY_NEAR_STATION
    fuel_below_pct: float = Field(default=20.0, gt=0, le=100)
    soc_below_pct: float = Field(default=20.0, gt=0, le=100)
    max_distance_km: float = Field(default=3.0, gt=0, le=50)
    #: Station bearing against the car's heading; a parked car takes any station in reach.
    max_heading_deviation_deg: float = Field(default=60.0, ge=0, le=180)
    partner_id: str = Field(pattern=RULE_ID_PATTERN)
    discount: str = Field(default="10 ct/l", min_length=1, max_length=60, pattern=TEXT_PATTERN)


class ServiceNearDealerParams(_Strict):
    kind: Literal[RuleKind.SERVICE_NEAR_DEALER] = RuleKind.SERVICE_NEAR_DEALER
    #: Service counts as due below this remaining distance (or when the car says it is due).
    distance_to_service_below_km: float = Field(default=1000.0, ge=0, le=100_000)
    place_kinds: tuple[PlaceKind, ...] = (PlaceKind.DEALER, PlaceKind.SERVICE_CENTRE)


class ContractRenewalParams(_Strict):
    kind: Literal[RuleKind.CONTRACT_RENEWAL] = RuleKind.CONTRACT_RENEWAL
    within_days: int = Field(default=30, ge=1, le=365)
    contracts: tuple[Literal["warranty", "subscription", "entitlement"], ...] = (
        "warranty",
        "subscription",
        "entitlement",
    )


class ModelRecommendationParams(_Strict):
    kind: Literal[RuleKind.MODEL_RECOMMENDATION] = RuleKind.MODEL_RECOMMENDATION
    #: An ICE car whose mean driving day stays under this would do it all on a charge.
    max_mean_daily_km: float = Field(default=60.0, gt=0, le=2000)
    min_days_observed: int = Field(default=5, ge=1, le=365)
    from_powertrains: tuple[Literal["ice", "hev", "phev", "bev"], ...] = ("ice",)
    recommended_model: str = Field(
        default="i4 eDrive40", min_length=1, max_length=60, pattern=TEXT_PATTERN
    )


class FeatureTrialParams(_Strict):
    kind: Literal[RuleKind.FEATURE_TRIAL] = RuleKind.FEATURE_TRIAL
    feature: str = Field(default="heated_seats", pattern=r"^[a-z][a-z0-9_]{1,63}$")
    #: Mean outside air temperature over the last days at or below this: winter.
    below_air_temperature_c: float = Field(default=5.0, ge=-60, le=40)
    trial_days: int = Field(default=30, ge=1, le=365)


RuleParams = Annotated[
    LowEnergyParams
    | ServiceNearDealerParams
    | ContractRenewalParams
    | ModelRecommendationParams
    | FeatureTrialParams,
    Field(discriminator="kind"),
]


class OfferRuleSpec(_Strict):
    """What an administrator writes (``POST``/``PUT /v1/offers/rules``)."""

    name: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    campaign: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._ -]+$")
    enabled: bool = True
    policy: Policy = Policy()
    params: RuleParams

    @property
    def kind(self) -> RuleKind:
        return self.params.kind


class OfferRule(OfferRuleSpec):
    """A stored rule at one version."""

    id: str = Field(pattern=RULE_ID_PATTERN)
    version: int = Field(ge=1)

    @property
    def location_based(self) -> bool:
        return self.kind in LOCATION_KINDS

    @property
    def promotion(self) -> bool:
        return self.policy.category is OfferCategory.PROMOTION


#: The partners of the shipped station-discount rules (``fleetlink up`` creates them): id ->
#: (name, the brand whose stations are theirs in the shipped place data).
DEFAULT_PARTNERS: dict[str, tuple[str, str]] = {
    "star": ("Star (ORLEN) fuel stations", "Star"),
    "swm": ("SWM charging", "SWM"),
}


def default_rules() -> list[tuple[str, OfferRuleSpec]]:
    """The rules a new installation starts with (``fleetlink up`` and the evaluation)."""
    return [
        (
            "fuel-discount-partner",
            OfferRuleSpec(
                name="Fuel discount at a partner station on the way",
                campaign="partner-fuel",
                policy=Policy(max_speed_kmh=80.0, cooldown_h=24.0, valid_h=4.0),
                params=LowEnergyParams(partner_id="star", discount="10 ct/l"),
            ),
        ),
        (
            "charging-discount-partner",
            OfferRuleSpec(
                name="Charging discount at a partner charger on the way",
                campaign="partner-charging",
                policy=Policy(max_speed_kmh=80.0, cooldown_h=24.0, valid_h=4.0),
                params=LowEnergyParams(partner_id="swm", discount="20 % off one charge"),
            ),
        ),
        (
            "service-booking-near-dealer",
            OfferRuleSpec(
                name="Service booking when due and near a dealer",
                campaign="service-convenience",
                policy=Policy(category=OfferCategory.SERVICE, cooldown_h=72.0, valid_h=72.0),
                params=ServiceNearDealerParams(),
            ),
        ),
        (
            "contract-renewal",
            OfferRuleSpec(
                name="Renew before it runs out",
                campaign="renewals",
                policy=Policy(cooldown_h=24.0 * 14, valid_h=24.0 * 30),
                params=ContractRenewalParams(),
            ),
        ),
        (
            "ev-test-drive",
            OfferRuleSpec(
                name="Test drive an EV that fits how you drive",
                campaign="ev-conquest",
                policy=Policy(cooldown_h=24.0 * 90, valid_h=24.0 * 30),
                params=ModelRecommendationParams(),
            ),
        ),
        (
            "heated-seats-trial",
            OfferRuleSpec(
                name="Heated seats free for 30 days",
                campaign="winter-features",
                policy=Policy(cooldown_h=24.0 * 60, valid_h=24.0 * 14),
                params=FeatureTrialParams(),
            ),
        ),
    ]
