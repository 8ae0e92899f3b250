"""Diagnostics settings (environment prefix ``FLEETLINK_DIAGNOSTICS_``).

:class:`TrendSettings` tunes the trend models (``diagnostics.trends``). Failure thresholds are
the ones the simulator's ground truth uses (``docs/simulator-faults.md``); healthy rates are the
normal wear a healthy car shows there. A trend raises a finding only when its slope is clearly
beyond healthy wear (at least ``*_min_*`` and ``trend_min_t`` standard errors beyond the healthy
rate) *and* it is predicted to cross its threshold within ``trend_horizon_days``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Windows and decisions shared by every trend model.
DEFAULT_TREND_WINDOW_DAYS = 30
DEFAULT_TREND_MIN_DAYS = 5
#: Look-back windows fitted besides the whole window: a recent onset shows in a short one first.
DEFAULT_TREND_FIT_WINDOWS_DAYS = (7, 14)
DEFAULT_TREND_FULL_CONFIDENCE_DAYS = 14
DEFAULT_TREND_HORIZON_DAYS = 30.0
DEFAULT_TREND_WARNING_WITHIN_DAYS = 30.0
DEFAULT_TREND_CRITICAL_WITHIN_DAYS = 7.0
DEFAULT_TREND_CLEAR_HORIZON_DAYS = 60.0
DEFAULT_TREND_MIN_T = 4.0

# Tyre slow leak (cold pressure at 15 C).
DEFAULT_TIRE_FAILURE_KPA = 180.0
DEFAULT_TIRE_HEALTHY_LOSS_KPA_PER_DAY = 0.1
DEFAULT_TIRE_MIN_LOSS_KPA_PER_DAY = 0.4
DEFAULT_TIRE_RESET_JUMP_KPA = 8.0
DEFAULT_TIRE_RESOLUTION_KPA = 0.1

# 12 V battery (resting voltage).
DEFAULT_LV_FAILURE_V = 12.0
DEFAULT_LV_HEALTHY_LOSS_V_PER_DAY = 0.0
DEFAULT_LV_MIN_LOSS_V_PER_DAY = 0.006
DEFAULT_LV_RESET_JUMP_V = 0.15
DEFAULT_LV_RESOLUTION_V = 0.005

# Brake pads (wear against distance).
DEFAULT_PAD_FAILURE_PCT = 90.0
DEFAULT_PAD_HEALTHY_WEAR_PCT_PER_1000_KM = 2.0
DEFAULT_PAD_MIN_WEAR_PCT_PER_1000_KM = 8.0
DEFAULT_PAD_RESET_DROP_PCT = 5.0
DEFAULT_PAD_MIN_SPAN_KM = 100.0
DEFAULT_PAD_RESOLUTION_PCT = 0.5

# Coolant peak at load.
DEFAULT_COOLANT_FAILURE_C = 115.0
DEFAULT_COOLANT_HEALTHY_RISE_C_PER_DAY = 0.0
DEFAULT_COOLANT_MIN_RISE_C_PER_DAY = 0.3
DEFAULT_COOLANT_RESET_DROP_C = 10.0
DEFAULT_COOLANT_RESOLUTION_C = 1.0
#: Healthy peaks stay at or below ~93 C; a rising trend is called only past this level.
DEFAULT_COOLANT_ALARM_C = 95.0
DEFAULT_COOLANT_MIN_DAYS = 7
#: Below the shared t: the alarm level already keeps healthy engines out, and the peak's noise
#: would otherwise delay a real fault by days.
DEFAULT_COOLANT_MIN_T = 3.0
DEFAULT_COOLANT_FIT_WINDOWS_DAYS = (14,)
#: A day whose peak stayed below this never warmed the engine up: no evidence either way.
DEFAULT_COOLANT_WARM_MIN_C = 70.0

# Traction battery state of health.
DEFAULT_SOH_FAILURE_PCT = 70.0
DEFAULT_SOH_HEALTHY_LOSS_PCT_PER_DAY = 0.005
DEFAULT_SOH_MIN_LOSS_PCT_PER_DAY = 0.05
DEFAULT_SOH_RESET_JUMP_PCT = 2.0
DEFAULT_SOH_RESOLUTION_PCT = 0.05


class TrendSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETLINK_DIAGNOSTICS_", extra="ignore")

    # How many days of features a pass reads, and how many a key needs to be judged at all.
    trend_window_days: int = Field(default=DEFAULT_TREND_WINDOW_DAYS, ge=3, le=366)
    trend_min_days: int = Field(default=DEFAULT_TREND_MIN_DAYS, ge=3)
    trend_fit_windows_days: tuple[int, ...] = DEFAULT_TREND_FIT_WINDOWS_DAYS
    # Days of data after which more data no longer raises the confidence.
    trend_full_confidence_days: int = Field(default=DEFAULT_TREND_FULL_CONFIDENCE_DAYS, ge=1)
    # A finding needs the predicted failure within this many days. Its severity: critical
    # within trend_critical_within_days (or past the threshold), warning within
    # trend_warning_within_days, info beyond.
    trend_horizon_days: float = Field(default=DEFAULT_TREND_HORIZON_DAYS, gt=0)
    trend_warning_within_days: float = Field(default=DEFAULT_TREND_WARNING_WITHIN_DAYS, ge=0)
    trend_critical_within_days: float = Field(default=DEFAULT_TREND_CRITICAL_WITHIN_DAYS, ge=0)
    # A key is declared healthy (clearance) only with a healthy slope or a failure further out
    # than this: between the horizon and this, an open alert stays as it is (no flapping).
    trend_clear_horizon_days: float = Field(default=DEFAULT_TREND_CLEAR_HORIZON_DAYS, gt=0)
    # How many standard errors the slope must lie beyond the healthy rate.
    trend_min_t: float = Field(default=DEFAULT_TREND_MIN_T, gt=0)

    tire_failure_kpa: float = DEFAULT_TIRE_FAILURE_KPA
    tire_healthy_loss_kpa_per_day: float = Field(
        default=DEFAULT_TIRE_HEALTHY_LOSS_KPA_PER_DAY, ge=0
    )
    tire_min_loss_kpa_per_day: float = Field(default=DEFAULT_TIRE_MIN_LOSS_KPA_PER_DAY, gt=0)
    tire_reset_jump_kpa: float = Field(default=DEFAULT_TIRE_RESET_JUMP_KPA, gt=0)
    tire_resolution_kpa: float = Field(default=DEFAULT_TIRE_RESOLUTION_KPA, gt=0)

    lv_failure_v: float = DEFAULT_LV_FAILURE_V
    lv_healthy_loss_v_per_day: float = Field(default=DEFAULT_LV_HEALTHY_LOSS_V_PER_DAY, ge=0)
    lv_min_loss_v_per_day: float = Field(default=DEFAULT_LV_MIN_LOSS_V_PER_DAY, gt=0)
    lv_reset_jump_v: float = Field(default=DEFAULT_LV_RESET_JUMP_V, gt=0)
    lv_resolution_v: float = Field(default=DEFAULT_LV_RESOLUTION_V, gt=0)

    pad_failure_pct: float = DEFAULT_PAD_FAILURE_PCT
    pad_healthy_wear_pct_per_1000_km: float = Field(
        default=DEFAULT_PAD_HEALTHY_WEAR_PCT_PER_1000_KM, ge=0
    )
    pad_min_wear_pct_per_1000_km: float = Field(default=DEFAULT_PAD_MIN_WEAR_PCT_PER_1000_KM, gt=0)
    pad_reset_drop_pct: float = Field(default=DEFAULT_PAD_RESET_DROP_PCT, gt=0)
    pad_min_span_km: float = Field(default=DEFAULT_PAD_MIN_SPAN_KM, ge=0)
    pad_resolution_pct: float = Field(default=DEFAULT_PAD_RESOLUTION_PCT, gt=0)

    coolant_failure_c: float = DEFAULT_COOLANT_FAILURE_C
    coolant_healthy_rise_c_per_day: float = Field(
        default=DEFAULT_COOLANT_HEALTHY_RISE_C_PER_DAY, ge=0
    )
    coolant_min_rise_c_per_day: float = Field(default=DEFAULT_COOLANT_MIN_RISE_C_PER_DAY, gt=0)
    coolant_reset_drop_c: float = Field(default=DEFAULT_COOLANT_RESET_DROP_C, gt=0)
    coolant_resolution_c: float = Field(default=DEFAULT_COOLANT_RESOLUTION_C, gt=0)
    coolant_warm_min_c: float = DEFAULT_COOLANT_WARM_MIN_C
    coolant_alarm_c: float = DEFAULT_COOLANT_ALARM_C
    # Day-to-day noise of the peak makes a week too short to tell a trend from chance.
    coolant_min_days: int = Field(default=DEFAULT_COOLANT_MIN_DAYS, ge=3)
    coolant_min_t: float = Field(default=DEFAULT_COOLANT_MIN_T, gt=0)
    coolant_fit_windows_days: tuple[int, ...] = DEFAULT_COOLANT_FIT_WINDOWS_DAYS

    soh_failure_pct: float = DEFAULT_SOH_FAILURE_PCT
    soh_healthy_loss_pct_per_day: float = Field(default=DEFAULT_SOH_HEALTHY_LOSS_PCT_PER_DAY, ge=0)
    soh_min_loss_pct_per_day: float = Field(default=DEFAULT_SOH_MIN_LOSS_PCT_PER_DAY, gt=0)
    soh_reset_jump_pct: float = Field(default=DEFAULT_SOH_RESET_JUMP_PCT, gt=0)
    soh_resolution_pct: float = Field(default=DEFAULT_SOH_RESOLUTION_PCT, gt=0)
