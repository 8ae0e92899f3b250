"""Diagnostic trouble codes: what a code means, how urgent it is and what the owner should do.

Codes follow SAE J2012 / ISO 15031-6: a letter for the system (P powertrain, C chassis, B body,
U network), a digit for who defines the code, then three hexadecimal characters:

- ``P0xxx``, ``P2xxx``, ``P34xx``-``P3Fxx``, ``B0xxx``, ``C0xxx``, ``U0xxx``: SAE-defined,
  one meaning for every maker;
- ``P1xxx``, ``P30xx``-``P33xx``, ``B1/B2xxx``, ``C1/C2xxx``, ``U1/U2xxx``: manufacturer-defined;
- ``B3xxx``, ``C3xxx``, ``U3xxx``: reserved.

A UDS-style failure type byte (ISO 14229: ``P0A80-1C`` or ``P0A801C``) is accepted and ignored
for the lookup. :func:`describe` knows every code the reference simulator sets and a set of
common ones; any other valid code gets a classification by its system and range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from diagnostics.findings import Severity

_CODE = re.compile(r"^([PCBU])([0-3])([0-9A-F]{3})(?:-?([0-9A-F]{2}))?$")


class DtcCodeError(ValueError):
    """A string that is not an SAE J2012 trouble code."""

    code = "dtc_code_invalid"

    def __init__(self, value: str) -> None:
        super().__init__(f"not an SAE J2012 trouble code: {value!r}")
        self.value = value


class System(StrEnum):
    POWERTRAIN = "powertrain"
    CHASSIS = "chassis"
    BODY = "body"
    NETWORK = "network"


class Authority(StrEnum):
    """Who defines the code's meaning (SAE J2012 section 5)."""

    SAE = "sae"
    MANUFACTURER = "manufacturer"
    RESERVED = "reserved"


_SYSTEMS = {"P": System.POWERTRAIN, "C": System.CHASSIS, "B": System.BODY, "U": System.NETWORK}


@dataclass(frozen=True, slots=True)
class DtcInfo:
    code: str  # the base code, five characters
    system: System
    authority: Authority
    severity: Severity
    description: str
    recommended_action: str
    known: bool  # False: classified by system and range only


def parse_code(value: str) -> tuple[str, str | None]:
    """``(base code, failure type byte or None)`` of ``value``; :class:`DtcCodeError` if it is
    not a J2012 code. Case and surrounding space are ignored."""
    match = _CODE.match(value.strip().upper())
    if match is None:
        raise DtcCodeError(value)
    letter, digit, rest, ftb = match.groups()
    return f"{letter}{digit}{rest}", ftb


def authority(code: str) -> Authority:
    letter, digit = code[0], code[1]
    if letter == "P":
        if digit in "02":
            return Authority.SAE
        if digit == "1":
            return Authority.MANUFACTURER
        # P3000-P33FF manufacturer, P3400-P3FFF SAE.
        return Authority.MANUFACTURER if code[2] in "0123" else Authority.SAE
    if digit == "0":
        return Authority.SAE
    return Authority.MANUFACTURER if digit in "12" else Authority.RESERVED


# Recommended actions, one sentence for the owner each.
_OVERHEAT = (
    "Stop safely as soon as possible and switch the engine off; do not drive on until the "
    "cooling system has been checked."
)
_OIL_PRESSURE = (
    "Stop safely and switch the engine off at once: oil pressure is too low. Check the oil "
    "level and do not drive on without a workshop check."
)
_TRANS_HOT = "Stop safely and let the transmission cool down; have it checked before driving on."
_HV_ISOLATION = (
    "Stop safely and do not drive or charge the car: the high-voltage system has an insulation "
    "fault. Call roadside assistance."
)
_TYRE = (
    "Check the {wheel} tyre now and inflate it to the pressure on the door placard; have it "
    "inspected for a leak before driving far."
)
_PADS = "Book a brake service soon: the {wheel} brake pads are worn down to the wear sensor."
_LV = "Have the 12 V battery and charging system tested soon: the car may fail to start."
_HV = (
    "Book a visit to an authorised workshop to have the high-voltage battery assessed; range "
    "and power may be reduced."
)
_MISFIRE = (
    "Have the ignition and fuel system checked soon; if the engine warning light flashes, "
    "slow down and stop, as the catalytic converter can be damaged."
)
_ENGINE = "Have the engine checked by a workshop soon."
_EMISSIONS = (
    "Have the emission control system checked at your next service; the car is safe to drive."
)
_EVAP = (
    "Check that the fuel cap is closed tightly; if the warning stays on, have the evaporative "
    "emission system checked at your next service."
)
_TRANSMISSION = "Have the transmission checked soon; avoid heavy loads and towing until then."
_ABS = (
    "Have the ABS and stability control checked soon: they may be disabled, so drive with "
    "extra care."
)
_AIRBAG = "Have the airbag system checked soon: an airbag may not deploy in a crash."
_NETWORK = "Have the car's control units checked soon: some functions may be unavailable."

_C, _W, _I = Severity.CRITICAL, Severity.WARNING, Severity.INFO

_WHEEL_CODES = (("front left", "left front"), ("front right", "right front"),
                ("rear left", "left rear"), ("rear right", "right rear"))  # fmt: skip


def _wheel_entries() -> dict[str, tuple[Severity, str, str]]:
    # The reference car sets C0750/55/60/65 for a low tyre and C1160-C1163 (manufacturer range)
    # for a pad worn to its sensor, per wheel (simulator/dtc.py), as many makers do.
    entries: dict[str, tuple[Severity, str, str]] = {}
    for index, (owner_words, j2012_words) in enumerate(_WHEEL_CODES):
        entries[f"C07{50 + 5 * index}"] = (
            _C,
            f"Tire pressure monitor: {j2012_words} low pressure",
            _TYRE.format(wheel=owner_words),
        )
        entries[f"C116{index}"] = (
            _W,
            f"Brake pad wear sensor: {j2012_words} worn",
            _PADS.format(wheel=owner_words),
        )
    for code, words in (("C0035", "Left Front"), ("C0040", "Right Front"),
                        ("C0045", "Left Rear"), ("C0050", "Right Rear")):  # fmt: skip
        entries[code] = (_W, f"{words} Wheel Speed Sensor Circuit", _ABS)
    for cylinder in range(1, 9):
        entries[f"P030{cylinder}"] = (_W, f"Cylinder {cylinder} Misfire Detected", _MISFIRE)
    return entries


# fmt: off
_KNOWN: Final = MappingProxyType({
    **_wheel_entries(),
    # Powertrain, SAE J2012-DA titles.
    "P0011": (_W, '"A" Camshaft Position - Timing Over-Advanced or System Performance '
                  "(Bank 1)", _ENGINE),
    "P0016": (_W, "Crankshaft Position - Camshaft Position Correlation (Bank 1 Sensor A)",
              _ENGINE),
    "P0087": (_W, "Fuel Rail/System Pressure - Too Low", _ENGINE),
    "P0101": (_W, 'Mass or Volume Air Flow "A" Circuit Range/Performance', _ENGINE),
    "P0113": (_I, "Intake Air Temperature Sensor 1 Circuit High", _EMISSIONS),
    "P0117": (_W, "Engine Coolant Temperature Sensor 1 Circuit Low", _ENGINE),
    "P0118": (_W, "Engine Coolant Temperature Sensor 1 Circuit High", _ENGINE),
    "P0128": (_I, "Coolant Thermostat (Coolant Temperature Below Thermostat Regulating "
                  "Temperature)", _ENGINE),
    "P0133": (_I, "O2 Sensor Circuit Slow Response (Bank 1 Sensor 1)", _EMISSIONS),
    "P0135": (_I, "O2 Sensor Heater Circuit (Bank 1 Sensor 1)", _EMISSIONS),
    "P0171": (_W, "System Too Lean (Bank 1)", _ENGINE),
    "P0172": (_W, "System Too Rich (Bank 1)", _ENGINE),
    "P0174": (_W, "System Too Lean (Bank 2)", _ENGINE),
    "P0175": (_W, "System Too Rich (Bank 2)", _ENGINE),
    "P0217": (_C, "Engine Coolant Over Temperature Condition", _OVERHEAT),
    "P0218": (_C, "Transmission Fluid Over Temperature Condition", _TRANS_HOT),
    "P0219": (_W, "Engine Overspeed Condition", _ENGINE),
    "P0234": (_W, 'Turbocharger/Supercharger "A" Overboost Condition', _ENGINE),
    "P0299": (_W, 'Turbocharger/Supercharger "A" Underboost Condition', _ENGINE),
    "P0300": (_W, "Random/Multiple Cylinder Misfire Detected", _MISFIRE),
    "P0325": (_W, "Knock Sensor 1 Circuit (Bank 1 or Single Sensor)", _ENGINE),
    "P0335": (_W, 'Crankshaft Position Sensor "A" Circuit', _ENGINE),
    "P0340": (_W, 'Camshaft Position Sensor "A" Circuit (Bank 1 or Single Sensor)', _ENGINE),
    "P0401": (_I, 'Exhaust Gas Recirculation "A" Flow Insufficient Detected', _EMISSIONS),
    "P0420": (_I, "Catalyst System Efficiency Below Threshold (Bank 1)", _EMISSIONS),
    "P0430": (_I, "Catalyst System Efficiency Below Threshold (Bank 2)", _EMISSIONS),
    "P0442": (_I, "Evaporative Emission System Leak Detected (Small Leak)", _EVAP),
    "P0455": (_I, "Evaporative Emission System Leak Detected (Large Leak)", _EVAP),
    "P0456": (_I, "Evaporative Emission System Leak Detected (Very Small Leak)", _EVAP),
    "P0500": (_W, 'Vehicle Speed Sensor "A"', _ENGINE),
    "P0505": (_W, "Idle Air Control System", _ENGINE),
    "P0520": (_W, 'Engine Oil Pressure Sensor/Switch "A" Circuit', _ENGINE),
    "P0524": (_C, "Engine Oil Pressure Too Low", _OIL_PRESSURE),
    "P0562": (_W, "System Voltage Low", _LV),
    "P0563": (_W, "System Voltage High", _LV),
    "P0606": (_W, "Control Module Processor", _ENGINE),
    "P0700": (_W, "Transmission Control System (MIL Request)", _TRANSMISSION),
    "P0715": (_W, 'Input/Turbine Speed Sensor "A" Circuit', _TRANSMISSION),
    "P0730": (_W, "Incorrect Gear Ratio", _TRANSMISSION),
    "P0741": (_W, "Torque Converter Clutch Solenoid Circuit Performance/Stuck Off",
              _TRANSMISSION),
    "P0A0F": (_W, "Engine Failed to Start", _ENGINE),
    "P0A7F": (_W, "Hybrid/EV Battery Pack Deterioration", _HV),
    "P0A80": (_W, "Replace Hybrid/EV Battery Pack", _HV),
    "P0AA6": (_C, "Hybrid/EV Battery Voltage System Isolation Fault", _HV_ISOLATION),
    "P2002": (_W, "Diesel Particulate Filter Efficiency Below Threshold (Bank 1)", _EMISSIONS),
    "P2096": (_I, "Post Catalyst Fuel Trim System Too Lean (Bank 1)", _EMISSIONS),
    "P2097": (_I, "Post Catalyst Fuel Trim System Too Rich (Bank 1)", _EMISSIONS),
    "P242F": (_W, "Diesel Particulate Filter Restriction - Ash Accumulation", _EMISSIONS),
    # Body: occupant restraints.
    "B0001": (_W, "Driver Frontal Stage 1 Deployment Control", _AIRBAG),
    "B0010": (_W, "Passenger Frontal Stage 1 Deployment Control", _AIRBAG),
    # Network.
    "U0001": (_W, "High Speed CAN Communication Bus", _NETWORK),
    "U0073": (_W, 'Control Module Communication Bus "A" Off', _NETWORK),
    "U0100": (_W, 'Lost Communication With ECM/PCM "A"', _NETWORK),
    "U0101": (_W, "Lost Communication With TCM", _NETWORK),
    "U0121": (_W, "Lost Communication With Anti-Lock Brake System (ABS) Control Module", _ABS),
    "U0140": (_W, "Lost Communication With Body Control Module", _NETWORK),
})
# fmt: on

#: Every code with its own entry (base codes).
KNOWN_CODES: Final = frozenset(_KNOWN)


def _generic(code: str) -> DtcInfo:
    system = _SYSTEMS[code[0]]
    who = authority(code)
    whose = "manufacturer-specific" if who is Authority.MANUFACTURER else "generic"
    if who is Authority.RESERVED:
        whose = "reserved"
    # Unknown body codes are mostly comfort and lighting; B00xx is the SAE occupant restraint
    # (airbag) range, which is safety-relevant.
    if system is System.BODY and not code.startswith("B00"):
        severity, action = _I, f"Have code {code} (body electronics) checked at your next service."
    elif system is System.BODY:
        severity, action = _W, _AIRBAG
    else:
        severity = _W
        action = f"Have the {system.value} checked by a workshop soon (code {code})."
    description = f"{whose.capitalize()} {system.value} trouble code"
    return DtcInfo(code, system, who, severity, description, action, False)


def describe(value: str) -> DtcInfo:
    """Meaning, severity and recommended action of the code ``value`` (its failure type byte,
    if any, ignored); a classification by system and range for codes without an entry.
    :class:`DtcCodeError` if ``value`` is not a J2012 code."""
    code, _ = parse_code(value)
    entry = _KNOWN.get(code)
    if entry is None:
        return _generic(code)
    severity, description, action = entry
    return DtcInfo(code, _SYSTEMS[code[0]], authority(code), severity, description, action, True)
