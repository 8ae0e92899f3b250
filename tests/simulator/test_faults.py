"""Fault plans (simulator.faults) and the ground-truth file (simulator.ground_truth)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.catalogue import Powertrain, get_signal
from simulator.faults import (
    FAILURE_THRESHOLDS,
    MS_PER_DAY,
    FaultKind,
    FaultPlanError,
    FaultSpec,
    dump_fault_plan,
    kinds_for,
    load_fault_plan,
    plan_faults,
)
from simulator.fleet import build_fleet
from simulator.ground_truth import GroundTruthRecord, GroundTruthWriter, read_ground_truth

START_MS = 1_763_892_000_000
VIN = "WVWZZZCDZLW000001"


def test_default_preset_gives_about_thirty_percent_of_cars_one_fault() -> None:
    fleet = build_fleet(600, seed=3)
    plan = plan_faults(fleet, seed=7, start_ms=START_MS, days=30)
    assert 0.24 < len(plan) / len(fleet) < 0.36
    assert len({f.vin for f in plan}) == len(plan)  # one fault per car
    kinds = Counter(f.kind for f in plan)
    assert set(kinds) == set(FaultKind)
    by_vin = {str(p.vin): p for p in fleet}
    for fault in plan:
        assert fault.kind in kinds_for(by_vin[fault.vin].powertrain)
        assert START_MS <= fault.onset_ms <= START_MS + 12 * MS_PER_DAY
        assert get_signal(fault.signal) is not None, fault.signal


def test_no_coolant_fault_without_engine_and_no_battery_fault_without_battery() -> None:
    assert FaultKind.COOLANT_OVERHEATING not in kinds_for(Powertrain.BEV)
    assert FaultKind.TRACTION_BATTERY_DEGRADATION not in kinds_for(Powertrain.ICE)
    assert set(kinds_for(Powertrain.PHEV)) == set(FaultKind)


def test_plan_is_deterministic_and_stable_when_the_fleet_grows() -> None:
    fleet = build_fleet(300, seed=1)
    a = plan_faults(fleet, seed=5, start_ms=START_MS, days=30)
    assert a == plan_faults(fleet, seed=5, start_ms=START_MS, days=30)
    small = plan_faults(fleet[:100], seed=5, start_ms=START_MS, days=30)
    assert small == [f for f in a if f.vin in {str(p.vin) for p in fleet[:100]}]
    assert plan_faults(fleet, seed=5, start_ms=START_MS, days=30, preset="none") == []
    with pytest.raises(FaultPlanError):
        plan_faults(fleet, seed=5, start_ms=START_MS, days=30, preset="chaos")


def test_most_planned_faults_are_meant_to_fail_inside_the_window() -> None:
    plan = plan_faults(build_fleet(600, seed=3), seed=7, start_ms=START_MS, days=30)
    inside = 0
    for fault in plan:
        threshold = FAILURE_THRESHOLDS[fault.kind]
        per_day = fault.rate * (35.0 / 1000.0 if fault.kind is FaultKind.BRAKE_PAD_WEAR else 1.0)
        fail_ms = fault.onset_ms + threshold.typical_margin / per_day * MS_PER_DAY
        inside += fail_ms <= START_MS + 30 * MS_PER_DAY
    assert 0.6 < inside / len(plan) < 0.95


def test_plan_round_trips_through_a_file(tmp_path: Path) -> None:
    plan = plan_faults(build_fleet(200, seed=2), seed=9, start_ms=START_MS, days=10)
    path = tmp_path / "plan.jsonl"
    dump_fault_plan(plan, path)
    assert load_fault_plan(path) == plan


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "object"),
        (f'{{"vin": "{VIN}", "kind": "tire_slow_leak", "onset_ms": 0, "rate": 1}}', "wheel"),
        (f'{{"vin": "{VIN}", "kind": "gremlins", "onset_ms": 0, "rate": 1}}', "gremlins"),
        (f'{{"vin": "{VIN}", "kind": "brake_pad_wear", "onset_ms": "0", "rate": 1}}', "type"),
        (f'{{"vin": "{VIN}", "kind": "coolant_overheating", "onset_ms": 0, "rate": -1}}', "rate"),
        (f'{{"vin": "{VIN}", "kind": "coolant_overheating", "onset_ms": 0, "rate": true}}', "type"),
        (f'{{"vin": "{VIN}", "kind": "coolant_overheating", "onset_ms": 0}}', "fields"),
    ],
)
def test_bad_plan_lines_are_refused_with_their_line_number(
    tmp_path: Path, line: str, fragment: str
) -> None:
    good = f'{{"vin": "{VIN}", "kind": "coolant_overheating", "onset_ms": 5, "rate": 1.5}}'
    path = tmp_path / "plan.jsonl"
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(FaultPlanError, match=fragment) as caught:
        load_fault_plan(path)
    assert caught.value.line == 3
    assert caught.value.code == "fault_plan_invalid"


def test_missing_plan_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(FaultPlanError, match="cannot read"):
        load_fault_plan(tmp_path / "absent.jsonl")


def test_fault_spec_names_the_wheel_signal() -> None:
    spec = FaultSpec(VIN, FaultKind.TIRE_SLOW_LEAK, 0, 5.0, "Row2.Right")
    assert spec.signal == "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure"
    assert FaultSpec(VIN, FaultKind.BRAKE_PAD_WEAR, 0, 5.0, "Row1.Left").signal.endswith(
        "Row1.Wheel.Left.Brake.PadWear"
    )


@settings(max_examples=50)
@given(
    ts=st.integers(0, 2**50),
    expected=st.one_of(st.none(), st.integers(0, 2**50)),
    kind=st.sampled_from(list(FaultKind)),
    event=st.sampled_from(["onset", "failure"]),
)
def test_ground_truth_records_round_trip_as_json(
    ts: int, expected: int | None, kind: FaultKind, event: str
) -> None:
    record = GroundTruthRecord(VIN, kind.value, "", event, ts, 12.5, "Vehicle.X", expected)
    assert GroundTruthRecord.from_json(record.to_json()) == record
    assert "\n" not in record.to_json()


def test_writer_flushes_every_batch(tmp_path: Path) -> None:
    path = tmp_path / "gt.jsonl"
    record = GroundTruthRecord(VIN, "tire_slow_leak", "Row1.Left", "onset", 1, 180.0, "V.X", 9)
    with GroundTruthWriter(path) as writer:
        writer.write([record, record])
        assert read_ground_truth(path) == [record, record]  # visible before close
        writer.write([])
    assert writer.written == 2
    with pytest.raises(RuntimeError):
        writer.write([record])
