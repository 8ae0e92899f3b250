"""Thresholds and durations of the stream rules (environment prefix
``FLEETLINK_DIAGNOSTICS_RULES_``).

Every condition has a raise level, a separate clear level (hysteresis, so that a value hovering
at the threshold does not flap) and a hold time (the condition must hold that long before it
raises, so that a single spike does not). Failure thresholds equal the simulator's ground truth
(docs/simulator-faults.md), which in turn follow the cited standards.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Coolant: P0217 "engine coolant over temperature condition" sets at ~115 C and clears
# below 105 C (docs/simulator-faults.md); a healthy engine peaks near 93 C at load.
DEFAULT_OVERHEAT_RAISE_C = 115.0
DEFAULT_OVERHEAT_CLEAR_C = 105.0
DEFAULT_OVERHEAT_HOLD_S = 30
DEFAULT_OVERHEAT_CLEAR_HOLD_S = 60
DEFAULT_OVERHEAT_REPORT_STEP_C = 5.0

# Tyres: TPMS warning at 25 % below a ~240 kPa placard (UN R141 / FMVSS 138), compared at the
# 15 C reference temperature so that a cold morning alone is not a leak.
DEFAULT_TIRE_LEAK_RAISE_KPA = 180.0
DEFAULT_TIRE_LEAK_CLEAR_KPA = 185.0
DEFAULT_TIRE_LEAK_HOLD_S = 600
DEFAULT_TIRE_LEAK_CLEAR_HOLD_S = 600
DEFAULT_TIRE_REFERENCE_C = 15.0
DEFAULT_TIRE_REPORT_STEP_KPA = 10.0
# Sudden loss (a puncture): this much cold pressure lost within the window.
DEFAULT_PRESSURE_LOSS_KPA = 30.0
DEFAULT_PRESSURE_LOSS_WINDOW_S = 600
DEFAULT_PRESSURE_LOSS_HOLD_S = 10
DEFAULT_PRESSURE_LOSS_CLEAR_MARGIN_KPA = 10.0
DEFAULT_PRESSURE_LOSS_CLEAR_HOLD_S = 60

# 12 V: a resting (open-circuit) voltage of 12.0 V is ~25 % charge for lead-acid (BCI); the
# reading is only a resting voltage after the surface charge has gone (hours parked).
DEFAULT_LV_RAISE_V = 12.0
DEFAULT_LV_CLEAR_V = 12.2
DEFAULT_LV_REST_MIN_S = 3 * 3600
DEFAULT_LV_HOLD_S = 1800
DEFAULT_LV_CLEAR_HOLD_S = 1800
DEFAULT_LV_REPORT_STEP_V = 0.2

# Traction battery: 70 % state of health is the usual warranty end of life.
DEFAULT_SOH_RAISE_PCT = 70.0
DEFAULT_SOH_CLEAR_PCT = 72.0
DEFAULT_SOH_HOLD_S = 3600
DEFAULT_SOH_CLEAR_HOLD_S = 3600
DEFAULT_SOH_REPORT_STEP_PCT = 2.0

# Brake pads: wear sensors trip at ~2-3 mm of pad left, i.e. ~90 % worn.
DEFAULT_PAD_RAISE_PCT = 90.0
DEFAULT_PAD_CLEAR_PCT = 80.0
DEFAULT_PAD_HOLD_S = 300
DEFAULT_PAD_CLEAR_HOLD_S = 300
DEFAULT_PAD_REPORT_STEP_PCT = 5.0

# Service (VSS Vehicle.Service.*): info within this distance or time, warning when due.
DEFAULT_SERVICE_SOON_KM = 1000.0
DEFAULT_SERVICE_SOON_S = 14 * 86_400
DEFAULT_SERVICE_CLEAR_MARGIN_KM = 100.0
DEFAULT_SERVICE_CLEAR_MARGIN_S = 86_400

# State: a vehicle without data for this long is forgotten; at most this many are kept.
DEFAULT_VEHICLE_IDLE_EVICT_S = 7 * 86_400
DEFAULT_MAX_VEHICLES = 200_000
DEFAULT_MAX_DTC_CODES_PER_VEHICLE = 64


class RuleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEETLINK_DIAGNOSTICS_RULES_", extra="ignore", frozen=True
    )

    overheat_raise_c: float = DEFAULT_OVERHEAT_RAISE_C
    overheat_clear_c: float = DEFAULT_OVERHEAT_CLEAR_C
    overheat_hold_s: int = Field(default=DEFAULT_OVERHEAT_HOLD_S, ge=0)
    overheat_clear_hold_s: int = Field(default=DEFAULT_OVERHEAT_CLEAR_HOLD_S, ge=0)
    overheat_report_step_c: float = Field(default=DEFAULT_OVERHEAT_REPORT_STEP_C, gt=0)

    tire_leak_raise_kpa: float = Field(default=DEFAULT_TIRE_LEAK_RAISE_KPA, gt=0)
    tire_leak_clear_kpa: float = Field(default=DEFAULT_TIRE_LEAK_CLEAR_KPA, gt=0)
    tire_leak_hold_s: int = Field(default=DEFAULT_TIRE_LEAK_HOLD_S, ge=0)
    tire_leak_clear_hold_s: int = Field(default=DEFAULT_TIRE_LEAK_CLEAR_HOLD_S, ge=0)
    tire_reference_c: float = DEFAULT_TIRE_REFERENCE_C
    tire_report_step_kpa: float = Field(default=DEFAULT_TIRE_REPORT_STEP_KPA, gt=0)
    pressure_loss_kpa: float = Field(default=DEFAULT_PRESSURE_LOSS_KPA, gt=0)
    pressure_loss_window_s: int = Field(default=DEFAULT_PRESSURE_LOSS_WINDOW_S, ge=60)
    pressure_loss_hold_s: int = Field(default=DEFAULT_PRESSURE_LOSS_HOLD_S, ge=0)
    pressure_loss_clear_margin_kpa: float = Field(
        default=DEFAULT_PRESSURE_LOSS_CLEAR_MARGIN_KPA, ge=0
    )
    pressure_loss_clear_hold_s: int = Field(default=DEFAULT_PRESSURE_LOSS_CLEAR_HOLD_S, ge=0)

    lv_raise_v: float = Field(default=DEFAULT_LV_RAISE_V, gt=0)
    lv_clear_v: float = Field(default=DEFAULT_LV_CLEAR_V, gt=0)
    lv_rest_min_s: int = Field(default=DEFAULT_LV_REST_MIN_S, ge=0)
    lv_hold_s: int = Field(default=DEFAULT_LV_HOLD_S, ge=0)
    lv_clear_hold_s: int = Field(default=DEFAULT_LV_CLEAR_HOLD_S, ge=0)
    lv_report_step_v: float = Field(default=DEFAULT_LV_REPORT_STEP_V, gt=0)

    soh_raise_pct: float = Field(default=DEFAULT_SOH_RAISE_PCT, gt=0, le=100)
    soh_clear_pct: float = Field(default=DEFAULT_SOH_CLEAR_PCT, gt=0, le=100)
    soh_hold_s: int = Field(default=DEFAULT_SOH_HOLD_S, ge=0)
    soh_clear_hold_s: int = Field(default=DEFAULT_SOH_CLEAR_HOLD_S, ge=0)
    soh_report_step_pct: float = Field(default=DEFAULT_SOH_REPORT_STEP_PCT, gt=0)

    pad_raise_pct: float = Field(default=DEFAULT_PAD_RAISE_PCT, gt=0, le=100)
    pad_clear_pct: float = Field(default=DEFAULT_PAD_CLEAR_PCT, ge=0, le=100)
    pad_hold_s: int = Field(default=DEFAULT_PAD_HOLD_S, ge=0)
    pad_clear_hold_s: int = Field(default=DEFAULT_PAD_CLEAR_HOLD_S, ge=0)
    pad_report_step_pct: float = Field(default=DEFAULT_PAD_REPORT_STEP_PCT, gt=0)

    service_soon_km: float = Field(default=DEFAULT_SERVICE_SOON_KM, ge=0)
    service_soon_s: int = Field(default=DEFAULT_SERVICE_SOON_S, ge=0)
    service_clear_margin_km: float = Field(default=DEFAULT_SERVICE_CLEAR_MARGIN_KM, ge=0)
    service_clear_margin_s: int = Field(default=DEFAULT_SERVICE_CLEAR_MARGIN_S, ge=0)

    vehicle_idle_evict_s: int = Field(default=DEFAULT_VEHICLE_IDLE_EVICT_S, ge=60)
    max_vehicles: int = Field(default=DEFAULT_MAX_VEHICLES, ge=1)
    max_dtc_codes_per_vehicle: int = Field(default=DEFAULT_MAX_DTC_CODES_PER_VEHICLE, ge=1)

    @model_validator(mode="after")
    def _clear_levels_beyond_raise_levels(self) -> Self:
        # A clear level on the wrong side of its raise level would make a condition raise and
        # clear on the same value: the flapping hysteresis exists to prevent.
        above = (  # (name, raise, clear): the condition is "value above raise"
            ("overheat", self.overheat_raise_c, self.overheat_clear_c),
            ("pad", self.pad_raise_pct, self.pad_clear_pct),
        )
        below = (  # the condition is "value below raise"
            ("tire_leak", self.tire_leak_raise_kpa, self.tire_leak_clear_kpa),
            ("lv", self.lv_raise_v, self.lv_clear_v),
            ("soh", self.soh_raise_pct, self.soh_clear_pct),
        )
        for name, raise_at, clear_at in above:
            if not clear_at < raise_at:
                raise ValueError(f"{name}: the clear level must be below the raise level")
        for name, raise_at, clear_at in below:
            if not clear_at > raise_at:
                raise ValueError(f"{name}: the clear level must be above the raise level")
        if not self.pressure_loss_clear_margin_kpa < self.pressure_loss_kpa:
            raise ValueError("pressure_loss_clear_margin_kpa must be below pressure_loss_kpa")
        return self
