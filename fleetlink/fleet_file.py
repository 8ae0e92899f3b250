"""The simulated fleet's credentials on disk (``<data dir>/fleet.json``, mode 0600), so a
restarted ``fleetlink up`` or a separate ``fleetlink simulate`` drives the same cars."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from broker.secure_files import write_atomically


@dataclass
class FleetFile:
    seed: int
    passwords: dict[str, str] = field(default_factory=dict)  # VIN -> secret
    last_seqs: dict[str, int] = field(default_factory=dict)  # VIN -> last telemetry seq

    @classmethod
    def load(cls, path: Path) -> FleetFile | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return cls(
            seed=int(data["seed"]),
            passwords=dict(data["passwords"]),
            last_seqs={vin: int(seq) for vin, seq in data.get("last_seqs", {}).items()},
        )

    def save(self, path: Path) -> None:
        document = {"seed": self.seed, "passwords": self.passwords, "last_seqs": self.last_seqs}
        write_atomically(path, json.dumps(document, indent=1).encode())


def save_sequence_numbers(path: Path, last_seqs: dict[str, int]) -> None:
    """Record where each car's seq stopped (called when the fleet stops cleanly)."""
    stored = FleetFile.load(path)
    if stored is not None:
        stored.last_seqs.update(last_seqs)
        stored.save(path)
