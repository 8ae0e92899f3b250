"""Registers the simulated fleet in the vehicle registry and keeps its secrets in the fleet
file, so the same cars come back after a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from api.vehicle_registry import Ecu, VehicleRegistry, VehicleSpec
from fleetlink.fleet_file import FleetFile
from simulator.fleet import VehicleProfile, build_fleet
from simulator.runner import FleetMember

log = logging.getLogger(__name__)

_CONCURRENCY = 8


async def provision_fleet(
    registry: VehicleRegistry, fleet_file: Path, count: int, seed: int
) -> list[FleetMember]:
    stored = FleetFile.load(fleet_file)
    if stored is not None and stored.seed != seed:
        log.warning(
            "fleet file %s was made with seed %d; keeping it (not %d) so the same cars return",
            fleet_file,
            stored.seed,
            seed,
        )
    fleet = stored or FleetFile(seed=seed)
    profiles = build_fleet(count, fleet.seed)
    registered = await registry.registered_vins()
    semaphore = asyncio.Semaphore(_CONCURRENCY)

    async def ensure(profile: VehicleProfile) -> FleetMember:
        known = fleet.passwords.get(profile.vin)
        async with semaphore:
            if profile.vin not in registered:
                spec = VehicleSpec(
                    vin=profile.vin,
                    brand=profile.brand,
                    model=profile.model,
                    model_year=profile.model_year,
                    powertrain=profile.powertrain,
                    ecus=tuple(
                        Ecu(e.serial, e.hardware_id, e.software_version) for e in profile.ecus
                    ),
                )
                known = (await registry.register(spec, secret=known)).password
            elif known is None:
                # Registered earlier but the fleet file was lost: issue a new secret.
                rotated = await registry.rotate_secret(profile.vin)
                assert rotated is not None
                known = rotated.password
        return FleetMember(profile, known, fleet.last_seqs.get(profile.vin))

    new = sum(1 for p in profiles if p.vin not in registered)
    if new:
        log.info("registering %d simulated vehicles", new)
    members = await asyncio.gather(*(ensure(p) for p in profiles))
    for member in members:
        fleet.passwords[member.profile.vin] = member.password
    fleet.save(fleet_file)
    return list(members)
