"""The simulated fleet is registered with its ECUs, so OTA sees what each car has installed."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from api.vehicle_registry import VehicleRegistry
from fleetlink.provisioning import provision_fleet
from simulator.fleet import build_fleet


async def test_simulated_cars_are_registered_with_their_ecus(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    members = await provision_fleet(VehicleRegistry(pool), tmp_path / "fleet.json", 3, seed=5)
    assert len(members) == 3
    for profile in build_fleet(3, 5):
        rows = await pool.fetch(
            "SELECT ecu_id, hardware_id, software_version FROM vehicle_ecus WHERE vin = $1"
            " ORDER BY ecu_id",
            profile.vin,
        )
        expected = sorted((e.serial, e.hardware_id, e.software_version) for e in profile.ecus)
        assert [tuple(r) for r in rows] == expected
        assert len(expected) >= 5
