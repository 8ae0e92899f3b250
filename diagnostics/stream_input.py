"""What the stream rules read: one telemetry sample or one DTC event of one vehicle.

The integrator converts ingest's committed batches into these values (one call of
:meth:`diagnostics.stream_rules.StreamRules.evaluate` per batch). They mirror the wire contract
v1: ``ts`` in UTC epoch milliseconds, signals keyed by COVESA VSS path with VSS units, DTC
events as ``{"type": "dtc", "code": "P0217", "active": true}`` on the events topic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

SignalValue = float | int | bool | str


class StreamInputError(ValueError):
    """A sample or event the stream rules cannot take (a programming error of the caller:
    ingest has already refused such input)."""

    code = "stream_input_invalid"

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.value = value


def _check_identity(vin: object, ts_ms: object) -> None:
    if not isinstance(vin, str) or not vin:
        raise StreamInputError("vin must be a non-empty string", value=vin)
    # bool is an int in Python, but True is not a timestamp.
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or ts_ms < 0:
        raise StreamInputError("ts_ms must be a non-negative integer (epoch ms)", value=ts_ms)


@dataclass(frozen=True, slots=True)
class Sample:
    """All signals one vehicle read at ``ts_ms``. A sample is identified by (vin, ts_ms), as in
    the store: a resent sample has the same identity and must not change the outcome."""

    vin: str
    ts_ms: int
    signals: Mapping[str, SignalValue]

    def __post_init__(self) -> None:
        _check_identity(self.vin, self.ts_ms)

    def number(self, name: str) -> float | None:
        """The numeric value of signal ``name``, or None when absent, not a number (booleans
        and strings are not numbers) or not finite."""
        value = self.signals.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        number = float(value)
        return number if math.isfinite(number) else None

    def flag(self, name: str) -> bool | None:
        """The boolean value of signal ``name``, or None when absent or not a boolean."""
        value = self.signals.get(name)
        return value if isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class DtcEvent:
    """A diagnostic trouble code set (``active``) or cleared by the vehicle at ``ts_ms``.
    ``code`` is an SAE J2012 code such as ``P0217``; it is normalised to upper case."""

    vin: str
    ts_ms: int
    code: str
    active: bool

    def __post_init__(self) -> None:
        _check_identity(self.vin, self.ts_ms)
        if not isinstance(self.code, str) or not self.code.strip():
            raise StreamInputError("code must be a non-empty string", value=self.code)
        if not isinstance(self.active, bool):
            raise StreamInputError("active must be a boolean", value=self.active)
        object.__setattr__(self, "code", self.code.strip().upper())


def to_datetime(ts_ms: int) -> datetime:
    """UTC datetime of epoch milliseconds (``Finding.observed_at`` is the sample time)."""
    return datetime.fromtimestamp(ts_ms / 1000.0, tz=UTC)
