"""Each simulated car has the ECUs its powertrain implies, with software versions OTA can target;
deterministic, and without changing any other draw of the fleet."""

from __future__ import annotations

from collections import Counter

from protocol.catalogue import Powertrain
from simulator.ecus import build_ecus, ecu_names
from simulator.fleet import build_fleet


def test_ecus_follow_the_powertrain() -> None:
    assert "ecm" in ecu_names(Powertrain.ICE) and "bms" not in ecu_names(Powertrain.ICE)
    assert "ecm" not in ecu_names(Powertrain.BEV) and "obc" in ecu_names(Powertrain.BEV)
    assert {"ecm", "bms"} <= set(ecu_names(Powertrain.HEV))
    assert "obc" not in ecu_names(Powertrain.HEV)  # never plugged in
    assert {"ecm", "bms", "obc"} <= set(ecu_names(Powertrain.PHEV))
    for powertrain in Powertrain:
        assert {"tcu", "ivi", "bcm", "adas"} <= set(ecu_names(powertrain))


def test_a_fleet_has_unique_serials_shared_hardware_ids_and_a_spread_of_versions() -> None:
    fleet = build_fleet(300, seed=4)
    assert all(car.ecus for car in fleet)
    for car in fleet:
        assert [e.name for e in car.ecus] == list(ecu_names(car.powertrain))
    serials = [e.serial for car in fleet for e in car.ecus]
    assert len(set(serials)) == len(serials)
    # One hardware id per model, ECU and hardware revision; many cars share each.
    by_hardware = Counter(e.hardware_id for car in fleet for e in car.ecus)
    assert max(by_hardware.values()) > 5
    versions = {e.software_version for car in fleet for e in car.ecus if e.name == "tcu"}
    assert len(versions) > 10
    for version in versions:
        assert all(part.isdigit() for part in version.split("."))


def test_ecus_are_deterministic_and_leave_the_rest_of_the_fleet_alone() -> None:
    first, again = build_fleet(50, seed=9), build_fleet(50, seed=9)
    assert first == again
    car = first[0]
    assert build_ecus(car.vin, car.brand, car.model, car.powertrain, car.model_year) == car.ecus
