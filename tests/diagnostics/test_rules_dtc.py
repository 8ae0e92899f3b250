"""Trouble codes set and cleared by the car: findings, clearances and delivery order."""

from __future__ import annotations

from diagnostics.findings import AlertType, Severity
from diagnostics.rule_settings import RuleSettings
from diagnostics.stream_rules import StreamRules
from tests.diagnostics.test_rules_support import OTHER_VIN, VIN, dtc, run, seconds_of


def test_an_active_code_raises_a_finding_and_its_clear_a_clearance() -> None:
    rules = StreamRules()
    [finding] = run(rules, dtcs=[dtc(10, "P0217", True)]).findings
    assert finding.type is AlertType.DTC and finding.component == "P0217"
    assert finding.severity is Severity.CRITICAL and seconds_of(finding) == 10
    assert finding.evidence["description"] == "Engine Coolant Over Temperature Condition"
    assert finding.evidence["known"] is True and finding.evidence["system"] == "powertrain"
    assert "Stop safely" in finding.recommended_action
    # Set again while active (the car repeats itself): nothing new.
    assert run(rules, dtcs=[dtc(20, "P0217", True)]).findings == []
    [clearance] = run(rules, dtcs=[dtc(30, "P0217", False)]).clearances
    assert clearance.key == (VIN, AlertType.DTC, "P0217") and seconds_of(clearance) == 30
    assert run(rules, dtcs=[dtc(40, "P0217", False)]).clearances == []
    # Set again later: a new finding.
    assert len(run(rules, dtcs=[dtc(50, "P0217", True)]).findings) == 1


def test_unknown_codes_are_classified_by_system_and_range() -> None:
    rules = StreamRules()
    outcome = run(rules, dtcs=[dtc(0, "P1ABC", True), dtc(0, "B2001", True)])
    by_code = {f.component: f for f in outcome.findings}
    assert by_code["P1ABC"].severity is Severity.WARNING
    assert by_code["P1ABC"].evidence["known"] is False
    assert by_code["P1ABC"].evidence["authority"] == "manufacturer"
    assert by_code["B2001"].severity is Severity.INFO
    assert by_code["B2001"].evidence["system"] == "body"


def test_a_code_that_is_not_j2012_still_reaches_the_owner() -> None:
    [finding] = run(StreamRules(), dtcs=[dtc(0, "x-42", True)]).findings
    assert finding.component == "X-42" and finding.severity is Severity.WARNING
    assert finding.evidence["known"] is False and finding.evidence["system"] is None


def test_codes_are_normalised_to_upper_case() -> None:
    rules = StreamRules()
    [finding] = run(rules, dtcs=[dtc(0, " p0562 ", True)]).findings
    assert finding.component == "P0562"
    assert len(run(rules, dtcs=[dtc(5, "P0562", False)]).clearances) == 1


def test_a_late_event_does_not_undo_a_newer_one() -> None:
    rules = StreamRules()
    run(rules, dtcs=[dtc(100, "C0750", True)])
    late = run(rules, dtcs=[dtc(50, "C0750", False)])  # cleared before it was set: stale
    assert late.clearances == [] and rules.counters.stale_dtc_events == 1
    assert run(rules, dtcs=[dtc(150, "C0750", False)]).clearances != []


def test_a_set_and_a_clear_at_the_same_time_end_active_in_either_order() -> None:
    for events in ([dtc(7, "P0A80", True), dtc(7, "P0A80", False)],
                   [dtc(7, "P0A80", False), dtc(7, "P0A80", True)]):  # fmt: skip
        rules = StreamRules()
        first = run(rules, dtcs=events)
        assert [f.component for f in first.findings] == ["P0A80"] and first.clearances == []
        # And in separate batches, clear first: the set still wins the tie.
        other = StreamRules()
        run(other, dtcs=[events[0]])
        run(other, dtcs=[events[1]])
        assert run(other, dtcs=[dtc(8, "P0A80", False)]).clearances != []


def test_a_clear_on_a_vehicle_without_state_resolves_an_alert_opened_before() -> None:
    # After a restart the rules do not know the code was active; the clear still counts.
    [clearance] = run(StreamRules(), dtcs=[dtc(0, "P0217", False)]).clearances
    assert clearance.component == "P0217"


def test_codes_are_kept_per_vehicle() -> None:
    rules = StreamRules()
    outcome = run(rules, dtcs=[dtc(0, "P0217", True), dtc(0, "P0217", True, vin=OTHER_VIN)])
    assert sorted(f.vin for f in outcome.findings) == sorted([VIN, OTHER_VIN])


def test_the_codes_remembered_per_vehicle_are_bounded() -> None:
    rules = StreamRules(RuleSettings(max_dtc_codes_per_vehicle=2))
    run(rules, dtcs=[dtc(0, "P0300", True), dtc(1, "P0420", True), dtc(2, "P0420", False)])
    # A third code: the oldest cleared one (P0420) is forgotten, the active P0300 kept.
    run(rules, dtcs=[dtc(3, "P0171", True)])
    assert run(rules, dtcs=[dtc(4, "P0300", True)]).findings == []  # still known active
    # P0420 was forgotten: an old set of it is no longer recognised as stale.
    assert [f.component for f in run(rules, dtcs=[dtc(1, "P0420", True)]).findings] == ["P0420"]
