"""The DTC catalogue: SAE J2012 code structure, known codes and the generic classification."""

from __future__ import annotations

import pytest

from diagnostics.dtc_catalogue import (
    KNOWN_CODES,
    Authority,
    DtcCodeError,
    System,
    authority,
    describe,
    parse_code,
)
from diagnostics.findings import Severity
from simulator.dtc import DESCRIPTIONS, dtc_for
from simulator.faults import WHEELS, FaultKind


def simulator_codes() -> set[str]:
    per_wheel = (FaultKind.TIRE_SLOW_LEAK, FaultKind.BRAKE_PAD_WEAR)
    codes = {dtc_for(kind, wheel) for kind in per_wheel for wheel in WHEELS}
    codes |= {dtc_for(kind, "") for kind in FaultKind if kind not in per_wheel}
    return codes


def test_every_code_the_simulator_sets_is_known() -> None:
    codes = simulator_codes()
    assert codes == {
        *("C0750", "C0755", "C0760", "C0765"),
        *("C1160", "C1161", "C1162", "C1163"),
        *("P0217", "P0562", "P0A80"),
    }
    for code in codes:
        info = describe(code)
        assert info.known, code
        # The same meaning the car gives the code (simulator/dtc.py).
        assert info.description.lower() == DESCRIPTIONS[code].lower().replace(
            "replace hybrid battery pack", "replace hybrid/ev battery pack"
        )


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        ("P0217", Severity.CRITICAL),  # overheating: stop now
        ("P0524", Severity.CRITICAL),  # oil pressure too low
        ("P0AA6", Severity.CRITICAL),  # high-voltage isolation fault
        ("C0760", Severity.CRITICAL),  # tyre under-inflated
        ("P0562", Severity.WARNING),
        ("P0A80", Severity.WARNING),
        ("C1163", Severity.WARNING),
        ("P0301", Severity.WARNING),
        ("P0420", Severity.INFO),  # catalyst efficiency: emissions, safe to drive
        ("P0456", Severity.INFO),
    ],
)
def test_known_codes_have_the_severity_their_risk_calls_for(code: str, severity: Severity) -> None:
    assert describe(code).severity is severity


def test_wheel_codes_name_their_wheel_for_the_owner() -> None:
    assert "front left" in describe("C0750").recommended_action
    assert "rear right" in describe("C0765").recommended_action
    assert "front right" in describe("C1161").recommended_action


def test_every_entry_is_a_valid_code_with_a_description_and_an_action() -> None:
    assert len(KNOWN_CODES) >= 60
    for code in KNOWN_CODES:
        assert parse_code(code) == (code, None)
        info = describe(code)
        assert info.known and info.code == code
        assert info.description and info.recommended_action.endswith(".")
        assert info.system is {"P": System.POWERTRAIN, "C": System.CHASSIS,
                               "B": System.BODY, "U": System.NETWORK}[code[0]]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("P0300", Authority.SAE),
        ("P2096", Authority.SAE),
        ("P1234", Authority.MANUFACTURER),
        ("P3012", Authority.MANUFACTURER),  # P3000-P33FF
        ("P3400", Authority.SAE),  # P3400-P3FFF
        ("C0035", Authority.SAE),
        ("C1160", Authority.MANUFACTURER),
        ("B2001", Authority.MANUFACTURER),
        ("U0100", Authority.SAE),
        ("U3000", Authority.RESERVED),
    ],
)
def test_authority_follows_sae_j2012(code: str, expected: Authority) -> None:
    assert authority(code) is expected


@pytest.mark.parametrize(
    ("code", "system", "severity"),
    [
        ("P0ABC", System.POWERTRAIN, Severity.WARNING),
        ("P1ABC", System.POWERTRAIN, Severity.WARNING),
        ("C2F00", System.CHASSIS, Severity.WARNING),
        ("B1234", System.BODY, Severity.INFO),  # comfort and lighting
        ("B0099", System.BODY, Severity.WARNING),  # B00xx: occupant restraints
        ("U1234", System.NETWORK, Severity.WARNING),
    ],
)
def test_unknown_codes_get_a_generic_classification(
    code: str, system: System, severity: Severity
) -> None:
    assert code not in KNOWN_CODES
    info = describe(code)
    assert not info.known and info.system is system and info.severity is severity
    assert code in info.recommended_action or "airbag" in info.recommended_action
    assert system.value in info.description


def test_generic_descriptions_say_who_defines_the_code() -> None:
    assert describe("P0ABC").description == "Generic powertrain trouble code"
    assert describe("P1ABC").description == "Manufacturer-specific powertrain trouble code"
    assert describe("U3000").description == "Reserved network trouble code"


def test_codes_are_parsed_case_insensitively_with_an_optional_failure_type_byte() -> None:
    assert parse_code(" p0a80 ") == ("P0A80", None)
    assert parse_code("P0A80-1C") == ("P0A80", "1C")
    assert parse_code("P0A801C") == ("P0A80", "1C")
    assert describe("p0217-00").severity is Severity.CRITICAL


@pytest.mark.parametrize("bad", ["", "P021", "P02177", "X0217", "P4217", "P0G17", "P0217-1"])
def test_malformed_codes_are_refused_with_a_stable_code(bad: str) -> None:
    with pytest.raises(DtcCodeError) as info:
        describe(bad)
    assert info.value.code == "dtc_code_invalid" and info.value.value == bad
