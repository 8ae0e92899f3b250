"""Campaign rules as pure functions: the update status machine, maintenance windows in the
vehicle's local time, preconditions from the latest state, version order (downgrades) and
targeting."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ota.campaigns.errors import CampaignInvalidError, StatusTransitionError
from ota.campaigns.preconditions import (
    LOW_VOLTAGE,
    SPEED,
    TRACTION_SOC,
    Preconditions,
    StateValue,
)
from ota.campaigns.targeting import EcuFacts, Targeting, VehicleFacts, targeted
from ota.campaigns.versions import is_older
from ota.campaigns.windows import MaintenanceWindow, zone
from ota.status_machine import UpdateRecord, UpdateStatus, may_transition, transition

S = UpdateStatus
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


# -- status machine ---------------------------------------------------------------------------


def walk(*steps: UpdateStatus) -> UpdateRecord:
    record = UpdateRecord.assigned(T0)
    for minute, step in enumerate(steps, start=1):
        record = transition(record, step, T0 + timedelta(minutes=minute)).record
    return record


def test_the_happy_path_records_a_time_per_status() -> None:
    record = walk(S.OFFERED, S.ACCEPTED, S.DOWNLOADING, S.DOWNLOADED, S.INSTALLING, S.INSTALLED)
    assert record.status is S.INSTALLED and record.terminal
    assert [record.reached[s] for s in (S.ASSIGNED, S.OFFERED, S.INSTALLED)] == [
        T0,
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=6),
    ]
    assert record.code is None


def test_progress_may_skip_forward_but_never_goes_back() -> None:
    record = walk(S.OFFERED, S.ACCEPTED, S.INSTALLED)  # the intermediate reports were lost
    assert record.status is S.INSTALLED
    with pytest.raises(StatusTransitionError) as caught:
        transition(record, S.DOWNLOADING, T0)
    assert (caught.value.current, caught.value.target) == ("installed", "downloading")


def test_a_repeated_status_is_a_duplicate_not_a_change() -> None:
    record = walk(S.OFFERED, S.ACCEPTED, S.DOWNLOADING)
    again = transition(record, S.DOWNLOADING, T0 + timedelta(hours=1))
    assert not again.changed
    assert again.record.reached[S.DOWNLOADING] == T0 + timedelta(minutes=3)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.ASSIGNED, S.ACCEPTED),  # offered first
        (S.ASSIGNED, S.INSTALLED),
        (S.OFFERED, S.DOWNLOADING),  # not accepted: the car may not start
        (S.ACCEPTED, S.ROLLED_BACK),  # nothing installed yet to roll back from
        (S.DOWNLOADING, S.CANCELLED),  # a download under way finishes
        (S.INSTALLED, S.ASSIGNED),  # only failures are retried
        (S.CANCELLED, S.OFFERED),
    ],
)
def test_steps_the_machine_refuses(current: UpdateStatus, target: UpdateStatus) -> None:
    assert not may_transition(current, target)
    with pytest.raises(StatusTransitionError):
        transition(UpdateRecord(current), target, T0)


def test_a_failure_keeps_its_code_and_a_retry_is_a_new_attempt() -> None:
    failed = transition(walk(S.OFFERED, S.ACCEPTED), S.FAILED, T0, code="image_hash_mismatch")
    assert failed.record.code == "image_hash_mismatch"
    retried = transition(failed.record, S.ASSIGNED, T0 + timedelta(days=1)).record
    assert (retried.status, retried.attempt, retried.code) == (S.ASSIGNED, 2, None)
    assert dict(retried.reached) == {S.ASSIGNED: T0 + timedelta(days=1)}
    rolled_back = walk(S.OFFERED, S.ACCEPTED, S.DOWNLOADED, S.ROLLED_BACK)
    assert transition(rolled_back, S.ASSIGNED, T0).record.attempt == 2


# -- maintenance windows ----------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


def at(local: str, tz: ZoneInfo = BERLIN) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=tz).astimezone(UTC)


def test_a_night_window_is_open_in_the_vehicles_local_time() -> None:
    window = MaintenanceWindow(time(1), time(5))
    assert window.is_open(at("2026-11-23T01:00"), BERLIN)
    assert window.is_open(at("2026-11-23T04:59"), BERLIN)
    assert not window.is_open(at("2026-11-23T05:00"), BERLIN)
    # 01:30 UTC is 02:30 in Berlin but 20:30 the day before in New York.
    new_york = ZoneInfo("America/New_York")
    instant = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert window.is_open(instant, BERLIN)
    assert not window.is_open(instant, new_york)


def test_a_window_across_midnight_belongs_to_the_day_it_starts() -> None:
    friday_nights = MaintenanceWindow(time(22), time(5), frozenset({5}))
    assert friday_nights.is_open(at("2026-11-27T23:00"), BERLIN)  # Friday evening
    assert friday_nights.is_open(at("2026-11-28T04:00"), BERLIN)  # Saturday morning
    assert not friday_nights.is_open(at("2026-11-28T23:00"), BERLIN)  # Saturday evening
    assert not friday_nights.is_open(at("2026-11-27T04:00"), BERLIN)  # Friday morning


def test_windows_and_zones_are_validated() -> None:
    with pytest.raises(CampaignInvalidError):
        MaintenanceWindow(time(1), time(1))
    with pytest.raises(CampaignInvalidError):
        MaintenanceWindow(time(1), time(2), frozenset({0}))
    with pytest.raises(CampaignInvalidError):
        zone("Mars/Olympus_Mons")


# -- preconditions -------------------------------------------------------------------------------


def state(**values: float) -> dict[str, StateValue]:
    names = {"speed": SPEED, "voltage": LOW_VOLTAGE, "soc": TRACTION_SOC}
    return {names[k]: StateValue(v, T0) for k, v in values.items()}


def test_a_parked_charged_car_may_be_offered() -> None:
    assert Preconditions().unmet(state(speed=0, voltage=12.6, soc=80), "bev", T0) == ()


def test_each_unmet_precondition_is_named() -> None:
    checks = Preconditions()
    assert checks.unmet(state(speed=50, voltage=11.8, soc=10), "bev", T0) == (
        "not_parked",
        "low_voltage_battery_low",
        "traction_battery_low",
    )
    # An ICE car has no traction battery to check.
    assert checks.unmet(state(speed=0, voltage=12.6), "ice", T0) == ()


def test_unknown_or_stale_state_is_not_met() -> None:
    assert Preconditions().unmet({}, "phev", T0) == (
        "parked_unknown",
        "low_voltage_unknown",
        "traction_battery_unknown",
    )
    fresh_enough = Preconditions(max_state_age=timedelta(hours=1))
    old = state(speed=0, voltage=12.6)
    assert fresh_enough.unmet(old, "ice", T0 + timedelta(minutes=59)) == ()
    assert fresh_enough.unmet(old, "ice", T0 + timedelta(hours=2)) == (
        "parked_unknown",
        "low_voltage_unknown",
    )


def test_preconditions_can_be_switched_off() -> None:
    none = Preconditions(require_parked=False, min_low_voltage_v=None, min_traction_soc_pct=None)
    assert none.unmet({}, "bev", T0) == ()


# -- versions and targeting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("older", "newer"),
    [("2.9.3", "2.10.0"), ("2.1.0-rc1", "2.1.0"), ("1.0", "1.0.1"), ("2.1.0-rc1", "2.1.0-rc2")],
)
def test_version_order(older: str, newer: str) -> None:
    assert is_older(older, newer)
    assert not is_older(newer, older)
    assert not is_older(newer, newer)


def vehicle(vin: str, brand: str, year: int, region: str | None, *ecus: EcuFacts) -> VehicleFacts:
    return VehicleFacts(vin, brand, "Golf", year, "ice", region, T0, ecus)


TCU_OLD = EcuFacts("TCU-1", "VW-GOLF-TCU-H1", "2.0.0")
TCU_NEW = EcuFacts("TCU-2", "VW-GOLF-TCU-H1", "2.1.0")
BCM = EcuFacts("BCM-1", "VW-GOLF-BCM-H1", "1.0.0")
FLEET = [
    vehicle("WVWZZZ1JZXW000001", "Volkswagen", 2021, "DE", TCU_OLD, BCM),
    vehicle("WVWZZZ1JZXW000002", "Volkswagen", 2022, "AT", TCU_NEW, BCM),
    vehicle("WBA3A5C50CF256985", "BMW", 2021, None, BCM),
]


def vins(targeting: Targeting, hardware: tuple[str, ...] = ("VW-GOLF-TCU-H1",)) -> list[str]:
    return [v.vin for v, _ in targeted(targeting, FLEET, hardware)]


def test_only_vehicles_with_an_ecu_the_image_is_built_for_are_targeted() -> None:
    assert vins(Targeting()) == ["WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"]
    chosen = targeted(Targeting(), FLEET, ("VW-GOLF-TCU-H1",))
    assert [ecus for _, ecus in chosen] == [(TCU_OLD,), (TCU_NEW,)]


def test_criteria_narrow_each_other() -> None:
    assert vins(Targeting(model_years=frozenset({2022}))) == ["WVWZZZ1JZXW000002"]
    assert vins(Targeting(regions=frozenset({"DE"}))) == ["WVWZZZ1JZXW000001"]
    assert vins(Targeting(current_versions=frozenset({"2.0.0"}))) == ["WVWZZZ1JZXW000001"]
    assert vins(Targeting(brands=frozenset({"BMW"}))) == []
    assert vins(Targeting(vins=frozenset({"WVWZZZ1JZXW000002"}), regions=frozenset({"DE"}))) == []
    assert vins(Targeting(hardware_ids=frozenset({"VW-GOLF-BCM-H1"}))) == []
