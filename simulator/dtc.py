"""Diagnostic trouble codes the simulated car sets for its faults (SAE J2012 / ISO 15031-6).

P0xxx and C0xxx are generic codes with a standard meaning; C1xxx is the range SAE J2012 leaves
to manufacturers, used here for the brake pad wear sensors as many makers do.
"""

from __future__ import annotations

from simulator.faults import FaultKind

#: TPMS low pressure per wheel (C0750 left front, C0755 right front, C0760 left rear,
#: C0765 right rear; C0775 would be the spare).
_TIRE_CODES = {"Row1.Left": "C0750", "Row1.Right": "C0755", "Row2.Left": "C0760",
               "Row2.Right": "C0765"}  # fmt: skip
#: Pad wear sensor circuit open (pad worn to the sensor), manufacturer-specific range.
_PAD_CODES = {"Row1.Left": "C1160", "Row1.Right": "C1161", "Row2.Left": "C1162",
              "Row2.Right": "C1163"}  # fmt: skip
_UNIQUE_CODES = {
    FaultKind.LOW_VOLTAGE_BATTERY_DEGRADATION: "P0562",  # system voltage low
    FaultKind.COOLANT_OVERHEATING: "P0217",  # engine coolant over temperature condition
    FaultKind.TRACTION_BATTERY_DEGRADATION: "P0A80",  # replace hybrid/EV battery pack
}

DESCRIPTIONS = {
    "C0750": "Tire pressure monitor: left front low pressure",
    "C0755": "Tire pressure monitor: right front low pressure",
    "C0760": "Tire pressure monitor: left rear low pressure",
    "C0765": "Tire pressure monitor: right rear low pressure",
    "C1160": "Brake pad wear sensor: left front worn",
    "C1161": "Brake pad wear sensor: right front worn",
    "C1162": "Brake pad wear sensor: left rear worn",
    "C1163": "Brake pad wear sensor: right rear worn",
    "P0562": "System voltage low",
    "P0217": "Engine coolant over temperature condition",
    "P0A80": "Replace hybrid battery pack",
}


def dtc_for(kind: FaultKind, component: str) -> str:
    """The code the car sets when ``kind`` fails on ``component``."""
    if kind is FaultKind.TIRE_SLOW_LEAK:
        return _TIRE_CODES[component]
    if kind is FaultKind.BRAKE_PAD_WEAR:
        return _PAD_CODES[component]
    return _UNIQUE_CODES[kind]


def clear_code(kind: FaultKind) -> bool:
    """Whether the code clears by itself when the condition goes away within a drive cycle.

    Only overheating does: the coolant cools down when the engine stops. A leaking tyre, a worn
    pad or a dead battery stay failed until repaired, which the simulator does not model.
    """
    return kind is FaultKind.COOLANT_OVERHEATING
