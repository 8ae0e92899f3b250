"""The VSS signal catalogue: content, invariants and SignalSpec.check() reason codes."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.catalogue import (
    ALL_POWERTRAINS,
    CATALOGUE,
    INTEGER_BOUNDS,
    UNITS,
    Datatype,
    Powertrain,
    SignalSpec,
    get_signal,
    signals_for,
)

EXPECTED_UNITS = {
    "km/h", "km", "m", "percent", "V", "A", "W", "kPa", "celsius", "degrees", "rpm",
    "l/100km", "s", "m/s^2",
}  # fmt: skip

WHEELS = [f"Vehicle.Chassis.Axle.Row{r}.Wheel.{s}" for r in (1, 2) for s in ("Left", "Right")]

# (name, datatype, unit, min, max) for every signal the brief requires.
REQUIRED: list[tuple[str, Datatype, str | None, float | None, float | None]] = [
    ("Vehicle.CurrentLocation.Latitude", Datatype.DOUBLE, "degrees", -90, 90),
    ("Vehicle.CurrentLocation.Longitude", Datatype.DOUBLE, "degrees", -180, 180),
    ("Vehicle.CurrentLocation.Heading", Datatype.DOUBLE, "degrees", 0, 360),
    ("Vehicle.CurrentLocation.Altitude", Datatype.DOUBLE, "m", -500, 9000),
    ("Vehicle.Speed", Datatype.FLOAT, "km/h", 0, 400),
    ("Vehicle.TraveledDistance", Datatype.FLOAT, "km", 0, 5_000_000),
    ("Vehicle.IsMoving", Datatype.BOOLEAN, None, None, None),
    ("Vehicle.Acceleration.Longitudinal", Datatype.FLOAT, "m/s^2", -30, 30),
    ("Vehicle.Exterior.AirTemperature", Datatype.FLOAT, "celsius", -60, 70),
    ("Vehicle.Cabin.HVAC.AmbientAirTemperature", Datatype.FLOAT, "celsius", -60, 90),
    ("Vehicle.Powertrain.Transmission.CurrentGear", Datatype.INT8, None, -1, 16),
    ("Vehicle.Powertrain.Range", Datatype.UINT32, "m", 0, 5_000_000),
    ("Vehicle.Powertrain.FuelSystem.RelativeLevel", Datatype.UINT8, "percent", 0, 100),
    ("Vehicle.Powertrain.FuelSystem.Range", Datatype.UINT32, "m", 0, 5_000_000),
    ("Vehicle.Powertrain.FuelSystem.InstantConsumption", Datatype.FLOAT, "l/100km", 0, 200),
    ("Vehicle.Powertrain.CombustionEngine.Speed", Datatype.UINT16, "rpm", 0, 12000),
    ("Vehicle.Powertrain.CombustionEngine.IsRunning", Datatype.BOOLEAN, None, None, None),
    (
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
        Datatype.FLOAT, "celsius", -50, 200,
    ),
    (
        "Vehicle.Powertrain.CombustionEngine.EngineOil.Temperature",
        Datatype.FLOAT, "celsius", -50, 200,
    ),
    ("Vehicle.Powertrain.CombustionEngine.EngineOil.Level", Datatype.STRING, None, None, None),
    (
        "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
        Datatype.FLOAT, "percent", 0, 100,
    ),
    ("Vehicle.Powertrain.TractionBattery.StateOfHealth", Datatype.FLOAT, "percent", 0, 100),
    ("Vehicle.Powertrain.TractionBattery.CurrentVoltage", Datatype.FLOAT, "V", 0, 1500),
    (
        "Vehicle.Powertrain.TractionBattery.CurrentPower",
        Datatype.FLOAT, "W", -1_000_000, 1_000_000,
    ),
    (
        "Vehicle.Powertrain.TractionBattery.Temperature.Average",
        Datatype.FLOAT, "celsius", -50, 100,
    ),
    ("Vehicle.Powertrain.TractionBattery.Range", Datatype.UINT32, "m", 0, 5_000_000),
    (
        "Vehicle.Powertrain.TractionBattery.Charging.IsCharging",
        Datatype.BOOLEAN, None, None, None,
    ),
    (
        "Vehicle.Powertrain.TractionBattery.Charging.IsChargingCableConnected",
        Datatype.BOOLEAN, None, None, None,
    ),
    (
        "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit",
        Datatype.UINT8, "percent", 0, 100,
    ),
    ("Vehicle.Powertrain.TractionBattery.Charging.ChargeRate", Datatype.FLOAT, "km/h", 0, 5000),
    (
        "Vehicle.Powertrain.TractionBattery.Charging.TimeToComplete",
        Datatype.UINT32, "s", 0, 604800,
    ),
    ("Vehicle.LowVoltageBattery.CurrentVoltage", Datatype.FLOAT, "V", 0, 32),
    ("Vehicle.LowVoltageBattery.CurrentCurrent", Datatype.FLOAT, "A", -2000, 2000),
    *[(f"{w}.Tire.Pressure", Datatype.UINT16, "kPa", 0, 1000) for w in WHEELS],
    *[(f"{w}.Tire.Temperature", Datatype.FLOAT, "celsius", -60, 200) for w in WHEELS],
    *[(f"{w}.Brake.PadWear", Datatype.UINT8, "percent", 0, 100) for w in WHEELS],
    ("Vehicle.Service.DistanceToService", Datatype.FLOAT, "km", -1_000_000, 1_000_000),
    ("Vehicle.Service.IsServiceDue", Datatype.BOOLEAN, None, None, None),
]  # fmt: skip


def spec(name: str) -> SignalSpec:
    found = get_signal(name)
    assert found is not None, name
    return found


def names(powertrain: Powertrain) -> set[str]:
    return {s.name for s in signals_for(powertrain)}


# --- content --------------------------------------------------------------------------------


def test_catalogue_is_large_enough_and_keyed_by_name() -> None:
    assert len(CATALOGUE) >= 40
    for name, item in CATALOGUE.items():
        assert item.name == name


@pytest.mark.parametrize(("name", "datatype", "unit", "lo", "hi"), REQUIRED)
def test_required_signal(
    name: str, datatype: Datatype, unit: str | None, lo: float | None, hi: float | None
) -> None:
    item = spec(name)
    assert item.datatype is datatype
    assert item.unit == unit
    assert item.min == lo
    assert item.max == hi


def test_time_to_service_is_signed_seconds() -> None:
    item = spec("Vehicle.Service.TimeToService")
    assert item.datatype is Datatype.INT32
    assert item.unit == "s"
    assert item.min is not None and item.min < 0  # negative = overdue
    assert item.check(-3600) is None


def test_engine_oil_level_values_follow_vss() -> None:
    item = spec("Vehicle.Powertrain.CombustionEngine.EngineOil.Level")
    assert item.allowed == ("CRITICALLY_LOW", "LOW", "NORMAL", "HIGH", "CRITICALLY_HIGH")


def test_every_entry_is_well_formed() -> None:
    assert UNITS == EXPECTED_UNITS
    for item in CATALOGUE.values():
        assert item.name.startswith("Vehicle."), item.name
        assert " " not in item.name
        assert all(part and part[0].isupper() for part in item.name.split(".")), item.name
        assert item.unit is None or item.unit in EXPECTED_UNITS, item
        assert item.description.strip(), item.name
        assert "\n" not in item.description
        assert item.powertrains, item.name
        if item.is_numeric:
            assert item.min is not None and item.max is not None
            assert item.min < item.max, item.name
            if item.datatype in INTEGER_BOUNDS:
                lo, hi = INTEGER_BOUNDS[item.datatype]
                assert lo <= item.min and item.max <= hi, item.name
        else:
            assert item.min is None and item.max is None, item.name
        if item.datatype is Datatype.BOOLEAN:
            assert item.unit is None


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        CATALOGUE["Vehicle.Speed"] = spec("Vehicle.Speed")  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec("Vehicle.Speed").max = 1000  # type: ignore[misc]


def test_unknown_signals_are_not_an_error() -> None:
    assert get_signal("Vehicle.OEM.Something.New") is None
    assert get_signal("") is None
    assert "Vehicle.OEM.Something.New" not in CATALOGUE


# --- powertrain applicability ----------------------------------------------------------------


def test_all_powertrains() -> None:
    assert frozenset(Powertrain) == ALL_POWERTRAINS
    assert {p.value for p in Powertrain} == {"ice", "bev", "phev", "hev"}


def test_bev_has_no_fuel_or_engine() -> None:
    bev = names(Powertrain.BEV)
    assert not {n for n in bev if ".FuelSystem." in n or ".CombustionEngine." in n}
    assert "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current" in bev
    assert "Vehicle.Powertrain.TractionBattery.Charging.IsCharging" in bev
    assert "Vehicle.Powertrain.TractionBattery.Range" in bev


def test_ice_has_no_traction_battery() -> None:
    ice = names(Powertrain.ICE)
    assert not {n for n in ice if ".TractionBattery." in n}
    assert "Vehicle.Powertrain.FuelSystem.RelativeLevel" in ice
    assert "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature" in ice
    # the 12 V battery is on every car
    assert "Vehicle.LowVoltageBattery.CurrentVoltage" in ice


def test_phev_has_everything() -> None:
    phev = names(Powertrain.PHEV)
    assert phev == set(CATALOGUE)
    assert phev == names(Powertrain.ICE) | names(Powertrain.BEV)


def test_hev_has_fuel_and_small_battery_but_no_charging() -> None:
    hev = names(Powertrain.HEV)
    assert "Vehicle.Powertrain.FuelSystem.RelativeLevel" in hev
    assert "Vehicle.Powertrain.CombustionEngine.Speed" in hev
    assert "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current" in hev
    assert not {n for n in hev if ".Charging." in n}
    assert "Vehicle.Powertrain.TractionBattery.Range" not in hev


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_common_signals_on_every_powertrain(powertrain: Powertrain) -> None:
    have = names(powertrain)
    for wheel in WHEELS:
        assert {f"{wheel}.Tire.Pressure", f"{wheel}.Brake.PadWear"} <= have
    assert {
        "Vehicle.Speed",
        "Vehicle.TraveledDistance",
        "Vehicle.CurrentLocation.Latitude",
        "Vehicle.Service.DistanceToService",
        "Vehicle.Powertrain.Range",
    } <= have


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_signals_for_keeps_catalogue_order(powertrain: Powertrain) -> None:
    order = list(CATALOGUE)
    got = [s.name for s in signals_for(powertrain)]
    assert got == sorted(got, key=order.index)
    assert isinstance(signals_for(powertrain), tuple)


# --- check() ---------------------------------------------------------------------------------

CHECK_CASES: list[tuple[str, Any, str | None]] = [
    # float signal
    ("Vehicle.Speed", 52.5, None),
    ("Vehicle.Speed", 52, None),  # JSON has one number type; ints are fine for floats
    ("Vehicle.Speed", 0, None),
    ("Vehicle.Speed", 400.0, None),  # bounds are inclusive
    ("Vehicle.Speed", -0.1, "out_of_range"),
    ("Vehicle.Speed", 400.01, "out_of_range"),
    ("Vehicle.Speed", "52", "wrong_type"),
    ("Vehicle.Speed", True, "wrong_type"),  # bool is an int subclass in Python; not here
    ("Vehicle.Speed", False, "wrong_type"),
    ("Vehicle.Speed", None, "wrong_type"),
    ("Vehicle.Speed", [52], "wrong_type"),
    ("Vehicle.Speed", math.nan, "non_finite_value"),
    ("Vehicle.Speed", math.inf, "non_finite_value"),
    ("Vehicle.Speed", -math.inf, "non_finite_value"),
    # double signal
    ("Vehicle.CurrentLocation.Latitude", -90, None),
    ("Vehicle.CurrentLocation.Latitude", 48.137154, None),
    ("Vehicle.CurrentLocation.Latitude", 90.000001, "out_of_range"),
    # integer signals
    ("Vehicle.Powertrain.FuelSystem.RelativeLevel", 42, None),
    ("Vehicle.Powertrain.FuelSystem.RelativeLevel", 42.0, None),  # whole float accepted
    ("Vehicle.Powertrain.FuelSystem.RelativeLevel", 42.5, "wrong_type"),
    ("Vehicle.Powertrain.FuelSystem.RelativeLevel", 101, "out_of_range"),
    ("Vehicle.Powertrain.FuelSystem.RelativeLevel", 255, "out_of_range"),
    ("Vehicle.Powertrain.FuelSystem.RelativeLevel", -1, "out_of_range"),
    ("Vehicle.Powertrain.FuelSystem.RelativeLevel", math.nan, "non_finite_value"),
    ("Vehicle.Powertrain.FuelSystem.RelativeLevel", True, "wrong_type"),
    ("Vehicle.Powertrain.Transmission.CurrentGear", -1, None),
    ("Vehicle.Powertrain.Transmission.CurrentGear", -2, "out_of_range"),
    ("Vehicle.Powertrain.CombustionEngine.Speed", 12_001, "out_of_range"),
    ("Vehicle.Powertrain.Range", 10**30, "out_of_range"),  # exact int compare, no overflow
    ("Vehicle.Service.TimeToService", 2**31, "out_of_range"),
    # boolean signal
    ("Vehicle.IsMoving", True, None),
    ("Vehicle.IsMoving", False, None),
    ("Vehicle.IsMoving", 1, "wrong_type"),  # 1 is not true
    ("Vehicle.IsMoving", 0.0, "wrong_type"),
    ("Vehicle.IsMoving", "true", "wrong_type"),
    ("Vehicle.IsMoving", None, "wrong_type"),
    # string signal with allowed values
    ("Vehicle.Powertrain.CombustionEngine.EngineOil.Level", "NORMAL", None),
    ("Vehicle.Powertrain.CombustionEngine.EngineOil.Level", "CRITICALLY_LOW", None),
    ("Vehicle.Powertrain.CombustionEngine.EngineOil.Level", "normal", "not_allowed_value"),
    ("Vehicle.Powertrain.CombustionEngine.EngineOil.Level", "", "not_allowed_value"),
    ("Vehicle.Powertrain.CombustionEngine.EngineOil.Level", 2, "wrong_type"),
    ("Vehicle.Powertrain.CombustionEngine.EngineOil.Level", True, "wrong_type"),
]


@pytest.mark.parametrize(("name", "value", "expected"), CHECK_CASES)
def test_check(name: str, value: object, expected: str | None) -> None:
    assert spec(name).check(value) == expected


def test_string_without_allowed_accepts_any_string() -> None:
    free = SignalSpec(
        "Vehicle.Test.Label", Datatype.STRING, None, None, None, ALL_POWERTRAINS, "Test."
    )
    assert free.check("anything") is None
    assert free.check(1) == "wrong_type"
    assert not free.is_numeric


def test_is_numeric() -> None:
    assert spec("Vehicle.Speed").is_numeric
    assert spec("Vehicle.Powertrain.FuelSystem.RelativeLevel").is_numeric
    assert not spec("Vehicle.IsMoving").is_numeric
    assert not spec("Vehicle.Powertrain.CombustionEngine.EngineOil.Level").is_numeric


numeric_specs = st.sampled_from([s for s in CATALOGUE.values() if s.is_numeric])


@given(numeric_specs, st.data())
def test_any_in_range_value_is_accepted(item: SignalSpec, data: st.DataObject) -> None:
    assert item.min is not None and item.max is not None
    if item.datatype in (Datatype.FLOAT, Datatype.DOUBLE):
        value: float = data.draw(st.floats(min_value=item.min, max_value=item.max))
    else:
        value = data.draw(st.integers(min_value=int(item.min), max_value=int(item.max)))
    assert item.check(value) is None


@given(numeric_specs, st.floats(min_value=1e-6, max_value=1e9))
def test_any_value_outside_the_range_is_rejected(item: SignalSpec, excess: float) -> None:
    assert item.min is not None and item.max is not None
    for value in (item.min - excess, item.max + excess):
        expected = "out_of_range"
        if item.datatype not in (Datatype.FLOAT, Datatype.DOUBLE) and not value.is_integer():
            expected = "wrong_type"  # the type check comes before the range check
        assert item.check(value) == expected


@given(st.sampled_from(list(CATALOGUE.values())), st.one_of(st.none(), st.lists(st.integers())))
def test_check_never_raises_on_junk(item: SignalSpec, value: object) -> None:
    assert item.check(value) == "wrong_type"


# --- construction guards ---------------------------------------------------------------------

BAD_SPECS: list[dict[str, Any]] = [
    {"name": "Speed"},
    {"unit": "mph"},
    {"powertrains": frozenset()},
    {"min": 10, "max": 10},
    {"min": None},
    {"datatype": Datatype.UINT8, "max": 300},
    {"allowed": ("A",)},
    {"datatype": Datatype.BOOLEAN},  # booleans have no range
]


@pytest.mark.parametrize("overrides", BAD_SPECS)
def test_inconsistent_specs_are_refused(overrides: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "name": "Vehicle.Test.Value",
        "datatype": Datatype.FLOAT,
        "unit": "km",
        "min": 0,
        "max": 100,
        "powertrains": ALL_POWERTRAINS,
        "description": "Test.",
    }
    SignalSpec(**fields)  # the baseline is valid
    with pytest.raises(ValueError, match=r"Vehicle\.|Speed"):
        SignalSpec(**{**fields, **overrides})
