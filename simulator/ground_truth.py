"""Ground truth of injected faults: what diagnostics should have found, and when.

The vehicle model records a fault's ``onset`` (with the failure time it projects at that moment)
and its ``failure`` (the component's state crossed the failure threshold of its signal). The
file is JSON lines, one :class:`GroundTruthRecord` per line, written as the simulation runs so
that memory stays bounded however long the run. Format: ``docs/simulator-faults.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

GroundTruthEvent = Literal["onset", "failure"]


@dataclass(frozen=True, slots=True)
class GroundTruthRecord:
    vin: str
    fault: str  # a simulator.faults.FaultKind value
    component: str  # "Row1.Left" for a wheel, "" for a unique component
    event: str  # "onset" | "failure"
    ts_ms: int
    threshold: float  # the failure threshold ...
    signal: str  # ... and the VSS signal it applies to
    expected_failure_ms: int | None  # on "onset": the projection at onset; else None

    def to_json(self) -> str:
        return json.dumps(
            {
                "vin": self.vin,
                "fault": self.fault,
                "component": self.component,
                "event": self.event,
                "ts_ms": self.ts_ms,
                "threshold": self.threshold,
                "signal": self.signal,
                "expected_failure_ms": self.expected_failure_ms,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, line: str) -> GroundTruthRecord:
        raw = json.loads(line)
        return cls(
            vin=raw["vin"],
            fault=raw["fault"],
            component=raw["component"],
            event=raw["event"],
            ts_ms=raw["ts_ms"],
            threshold=raw["threshold"],
            signal=raw["signal"],
            expected_failure_ms=raw["expected_failure_ms"],
        )


class GroundTruthWriter:
    """Appends records to a JSON lines file (truncated when opened) and flushes each batch, so
    that a reader (or a crash) sees every record written so far. Holds no records itself."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self.written = 0

    def __enter__(self) -> Self:
        self._file = self.path.open("w", encoding="utf-8")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, records: Iterable[GroundTruthRecord]) -> None:
        if self._file is None:
            raise RuntimeError("GroundTruthWriter used outside its 'with' block")
        lines = [record.to_json() + "\n" for record in records]
        if lines:
            self._file.writelines(lines)
            self._file.flush()
            self.written += len(lines)


def read_ground_truth(path: Path) -> list[GroundTruthRecord]:
    """Every record of a ground-truth file, in file order."""
    with path.open(encoding="utf-8") as source:
        return [GroundTruthRecord.from_json(line) for line in source if line.strip()]
