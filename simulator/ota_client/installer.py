"""Simulated installs on A/B banks: the new image is written to the inactive bank and the ECU
boots it; if it does not come up healthy, the ECU falls back to the bank it ran before, so a
failed install never leaves the car without working software (UN R156 7.2.2.2: safe
recovery after a failed update; the A/B scheme of most automotive update agents).

How long an install takes and whether it fails are configurable per car (``InstallProfile``),
drawn from the car's own seeded random stream so a run is reproducible.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from simulator.ota_client.verify import InstalledImage


@dataclass(frozen=True, slots=True)
class InstallProfile:
    failure_rate: float = 0.0  # share of installs that fail and roll back
    min_duration_s: float = 0.0
    max_duration_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be in 0..1, got {self.failure_rate}")
        if not 0.0 <= self.min_duration_s <= self.max_duration_s:
            raise ValueError("durations must satisfy 0 <= min <= max")


@dataclass
class AbBanks:
    """One ECU's two banks: ``active`` runs, ``inactive`` holds the other image (or none)."""

    active: InstalledImage
    inactive: InstalledImage | None = None


@dataclass(frozen=True, slots=True)
class InstallResult:
    installed: bool  # False: rolled back to the previous image
    running: InstalledImage


@dataclass
class Installer:
    profile: InstallProfile = field(default_factory=InstallProfile)
    rng: random.Random = field(default_factory=random.Random)
    installs: int = 0
    rollbacks: int = 0

    async def install(self, banks: AbBanks, image: InstalledImage) -> InstallResult:
        profile = self.profile
        duration = self.rng.uniform(profile.min_duration_s, profile.max_duration_s)
        fails = self.rng.random() < profile.failure_rate
        previous = banks.active
        banks.inactive = image  # written to the other bank while the old one keeps running
        await asyncio.sleep(duration)
        self.installs += 1
        if fails:
            # The new bank did not boot healthy: stay on (fall back to) the previous one.
            self.rollbacks += 1
            return InstallResult(False, previous)
        banks.active, banks.inactive = image, previous
        return InstallResult(True, image)
