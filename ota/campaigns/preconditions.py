"""Preconditions checked before a car is offered an update, from its latest state (ingest's
``vehicle_state``): parked, 12 V battery and traction battery high enough. Pure.

An install must not start while the car is driving, and must not drain the 12 V battery below
what starts the car again or leave an EV unable to drive (UN R156 7.2.2.1.3/7.2.2.4: the
vehicle must have enough power to complete the update, and safe conditions checked before it).
A signal never reported, or older than ``max_state_age``, is unknown, and unknown is not met:
the car is offered later, when it has said where it stands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ota.campaigns.errors import CampaignInvalidError

SPEED: Final = "Vehicle.Speed"
LOW_VOLTAGE: Final = "Vehicle.LowVoltageBattery.CurrentVoltage"
TRACTION_SOC: Final = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
SIGNALS: Final = (SPEED, LOW_VOLTAGE, TRACTION_SOC)
#: Powertrains with a traction battery (protocol.catalogue names).
TRACTION_POWERTRAINS: Final = frozenset({"bev", "phev", "hev"})
PARKED_MAX_SPEED_KMH = 0.5


@dataclass(frozen=True, slots=True)
class StateValue:
    value: float
    ts: datetime


@dataclass(frozen=True, slots=True)
class Preconditions:
    require_parked: bool = True
    min_low_voltage_v: float | None = 12.2
    min_traction_soc_pct: float | None = 30.0
    max_state_age: timedelta | None = None

    def __post_init__(self) -> None:
        if self.min_low_voltage_v is not None and not 0 <= self.min_low_voltage_v <= 60:
            raise CampaignInvalidError(
                "min_low_voltage_v must be in 0..60 V",
                field="preconditions",
                value=self.min_low_voltage_v,
            )
        if self.min_traction_soc_pct is not None and not 0 <= self.min_traction_soc_pct <= 100:
            raise CampaignInvalidError(
                "min_traction_soc_pct must be in 0..100 %",
                field="preconditions",
                value=self.min_traction_soc_pct,
            )

    def unmet(
        self, state: Mapping[str, StateValue], powertrain: str, now: datetime
    ) -> tuple[str, ...]:
        """The reasons the car may not be offered now; empty when it may."""
        reasons: list[str] = []

        def known(signal: str) -> StateValue | None:
            value = state.get(signal)
            if value is None:
                return None
            if self.max_state_age is not None and now - value.ts > self.max_state_age:
                return None
            return value

        if self.require_parked:
            speed = known(SPEED)
            if speed is None:
                reasons.append("parked_unknown")
            elif speed.value > PARKED_MAX_SPEED_KMH:
                reasons.append("not_parked")
        if self.min_low_voltage_v is not None:
            voltage = known(LOW_VOLTAGE)
            if voltage is None:
                reasons.append("low_voltage_unknown")
            elif voltage.value < self.min_low_voltage_v:
                reasons.append("low_voltage_battery_low")
        if self.min_traction_soc_pct is not None and powertrain in TRACTION_POWERTRAINS:
            soc = known(TRACTION_SOC)
            if soc is None:
                reasons.append("traction_battery_unknown")
            elif soc.value < self.min_traction_soc_pct:
                reasons.append("traction_battery_low")
        return tuple(reasons)
