"""Offers settings (environment prefix ``FLEETLINK_OFFERS_``): the frequency caps every rule
shares, how old a stream trigger may be when decided, and how often the periodic rules are
swept. Per-rule policy (cooldown, speed, validity) lives in the rules themselves."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_PER_DAY = 2
DEFAULT_MAX_PER_WEEK = 6
DEFAULT_MAX_TRIGGER_AGE_S = 120.0
DEFAULT_SWEEP_INTERVAL_S = 3600.0


class OfferSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLINK_OFFERS_", extra="ignore")

    #: Offers of all rules one customer may get within 24 hours and 7 days (either side).
    max_per_day: int = Field(default=DEFAULT_MAX_PER_DAY, ge=0, le=100)
    max_per_week: int = Field(default=DEFAULT_MAX_PER_WEEK, ge=0, le=500)
    #: A stream trigger older than this when decided is dropped (``stale_trigger``).
    max_trigger_age_s: float = Field(default=DEFAULT_MAX_TRIGGER_AGE_S, gt=0, le=86_400)
    sweep_interval_s: float = Field(default=DEFAULT_SWEEP_INTERVAL_S, ge=10, le=86_400)
