"""Which vehicles a campaign targets, as a pure predicate over what the fleet knows of a car.

Every criterion left empty matches everything; criteria combine with AND (an explicit VIN
list narrows the other criteria, it does not add to them). A vehicle is only ever targeted
through an ECU the image is built for: at least one of its ECUs must have a hardware id the
image lists (Uptane 5.2.3.1: the hardware identifier decides which ECU may install an image),
restricted further by ``hardware_ids`` and ``current_versions`` when given.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from ota.campaigns.errors import CampaignInvalidError

MAX_VINS = 100_000


@dataclass(frozen=True, slots=True)
class EcuFacts:
    serial: str
    hardware_id: str
    version: str


@dataclass(frozen=True, slots=True)
class VehicleFacts:
    vin: str
    brand: str
    model: str
    model_year: int
    powertrain: str
    region: str | None  # the market the car is registered in (the owner's country), if known
    registered_at: datetime
    ecus: tuple[EcuFacts, ...]


@dataclass(frozen=True, slots=True)
class Targeting:
    brands: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    model_years: frozenset[int] = frozenset()
    powertrains: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    hardware_ids: frozenset[str] = frozenset()
    current_versions: frozenset[str] = frozenset()
    vins: frozenset[str] = frozenset()
    #: Vehicles registered after the campaign was created join it while it runs.
    include_future: bool = False

    def __post_init__(self) -> None:
        if len(self.vins) > MAX_VINS:
            raise CampaignInvalidError(
                f"at most {MAX_VINS} explicit VINs", field="targeting.vins", value=len(self.vins)
            )

    def matching_ecus(
        self, vehicle: VehicleFacts, image_hardware_ids: Collection[str]
    ) -> tuple[EcuFacts, ...]:
        """The vehicle's ECUs this campaign would update; empty when it is not targeted."""
        if not self._vehicle_matches(vehicle):
            return ()
        return tuple(
            ecu
            for ecu in vehicle.ecus
            if ecu.hardware_id in image_hardware_ids
            and _admits(self.hardware_ids, ecu.hardware_id)
            and _admits(self.current_versions, ecu.version)
        )

    def _vehicle_matches(self, vehicle: VehicleFacts) -> bool:
        return (
            _admits(self.vins, vehicle.vin)
            and _admits(self.brands, vehicle.brand)
            and _admits(self.models, vehicle.model)
            and _admits(self.model_years, vehicle.model_year)
            and _admits(self.powertrains, vehicle.powertrain)
            and (not self.regions or vehicle.region in self.regions)
        )


def _admits(allowed: Collection[object], value: object) -> bool:
    return not allowed or value in allowed


def targeted(
    targeting: Targeting, vehicles: Sequence[VehicleFacts], image_hardware_ids: Collection[str]
) -> list[tuple[VehicleFacts, tuple[EcuFacts, ...]]]:
    """The targeted vehicles with the ECUs the image would go to."""
    found = []
    for vehicle in vehicles:
        ecus = targeting.matching_ecus(vehicle, image_hardware_ids)
        if ecus:
            found.append((vehicle, ecus))
    return found
