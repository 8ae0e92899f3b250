"""An OTA client for a simulated car of the fleet: its ECUs as the fleet built them, its report
key derived from the VIN and the fleet seed (reproducible, like the rest of the car), the two
roots it was built with, and an install profile drawn from its own random stream."""

from __future__ import annotations

import random
from concurrent.futures import Executor

from protocol.clock import Clock
from simulator.fleet import VehicleProfile
from simulator.ota_client.client import OtaClient, OtaTransport, StatusPublisher
from simulator.ota_client.installer import Installer, InstallProfile
from simulator.ota_client.report import EcuKey
from simulator.ota_client.trust import RepositoryTrust
from simulator.ota_client.verify import EcuState, InstalledImage

#: What a car knows about its factory software: a version and no release counter yet (the
#: first image from the image repository sets one).
FACTORY_RELEASE_COUNTER = 0


def ecu_states(profile: VehicleProfile) -> list[EcuState]:
    return [
        EcuState(
            serial=ecu.serial,
            hardware_id=ecu.hardware_id,
            installed=InstalledImage(ecu.software_version, FACTORY_RELEASE_COUNTER),
        )
        for ecu in profile.ecus
    ]


def ecu_key(vin: str, seed: int) -> EcuKey:
    return EcuKey.derived(f"fleetlink.ecu-key:{seed}:{vin}")


def ota_client(
    profile: VehicleProfile,
    *,
    seed: int,
    transport: OtaTransport,
    publisher: StatusPublisher,
    clock: Clock,
    image_root: bytes,
    director_root: bytes,
    install: InstallProfile | None = None,
    executor: Executor | None = None,
) -> OtaClient:
    vin = str(profile.vin)
    return OtaClient(
        vin=vin,
        ecus=ecu_states(profile),
        key=ecu_key(vin, seed),
        transport=transport,
        publisher=publisher,
        clock=clock,
        image_trust=RepositoryTrust.anchored("image", image_root),
        director_trust=RepositoryTrust.anchored("director", director_root),
        installer=Installer(install or InstallProfile(), random.Random(f"ota:{seed}:{vin}")),
        executor=executor,
    )
