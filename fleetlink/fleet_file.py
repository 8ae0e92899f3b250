"""The simulated fleet's credentials on disk (``<data dir>/fleet.json``, mode 0600), so a
restarted ``fleetlink up`` or a separate ``fleetlink simulate`` drives the same cars."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FleetFile:
    seed: int
    passwords: dict[str, str] = field(default_factory=dict)  # VIN -> secret

    @classmethod
    def load(cls, path: Path) -> FleetFile | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return cls(seed=int(data["seed"]), passwords=dict(data["passwords"]))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"seed": self.seed, "passwords": self.passwords}, handle, indent=1)
        tmp.replace(path)  # atomic: a crash never leaves half a file
