"""The telemetry layout (ADR 0005): which signal is stored where, and under what column name.

Every numeric and boolean catalogue signal has a typed column of the wide ``telemetry`` table,
one row per sample (VIN, ts); everything else (text signals and signals the catalogue does not
know) goes to the narrow ``telemetry_tail`` table, one row per value. Every sample has its wide
row, even one that carries only long-tail signals: ``telemetry`` is also the register of samples.

Pure: no I/O. The SQL migrations create the columns; ``tests/ingest/test_layout.py`` checks the
migrated schema against this module, so a catalogue signal added without its column fails there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from protocol.catalogue import CATALOGUE, INTEGER_BOUNDS, Datatype, SignalSpec

# PostgreSQL truncates identifiers beyond 63 bytes; the aggregates add a 4-character suffix.
MAX_COLUMN_NAME: Final = 63 - len("_avg")

SQL_TYPES: Final[Mapping[Datatype, str]] = MappingProxyType(
    {
        Datatype.BOOLEAN: "boolean",
        Datatype.INT8: "smallint",
        Datatype.UINT8: "smallint",
        Datatype.INT16: "smallint",
        Datatype.UINT16: "integer",
        Datatype.INT32: "integer",
        Datatype.UINT32: "bigint",
        Datatype.FLOAT: "double precision",
        Datatype.DOUBLE: "double precision",
    }
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def column_name(signal: str) -> str:
    """``Vehicle.Powertrain.TractionBattery.StateOfCharge.Current`` ->
    ``traction_battery_state_of_charge_current``: snake case without the ``Vehicle`` root and
    the ``Powertrain`` branch (which only made names long; no two signals collide without it)."""
    path = signal.removeprefix("Vehicle.").removeprefix("Powertrain.")
    return "_".join(_CAMEL.sub("_", part).lower() for part in path.split("."))


@dataclass(frozen=True, slots=True)
class WideColumn:
    signal: str
    name: str
    datatype: Datatype
    position: int  # among the signal columns, after (vin, ts)

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.datatype]

    @property
    def as_float(self) -> str:
        """SQL expression of the column as double precision (booleans as 0/1), the form
        history's min/avg/max and the narrow view use."""
        return (
            f"{self.name}::int::float8"
            if self.datatype is Datatype.BOOLEAN
            else (f"{self.name}::float8")
        )


def _is_wide(spec: SignalSpec) -> bool:
    return spec.datatype is not Datatype.STRING


WIDE_COLUMNS: Final[tuple[WideColumn, ...]] = tuple(
    WideColumn(spec.name, column_name(spec.name), spec.datatype, position)
    for position, spec in enumerate(s for s in CATALOGUE.values() if _is_wide(s))
)
#: Signal -> its column; a signal missing here belongs to the long tail.
COLUMNS: Final[Mapping[str, WideColumn]] = MappingProxyType({c.signal: c for c in WIDE_COLUMNS})
#: The wide table's columns in table order, as COPY and INSERT name them.
TELEMETRY_COLUMNS: Final[tuple[str, ...]] = ("vin", "ts", *(c.name for c in WIDE_COLUMNS))
TAIL_COLUMNS: Final[tuple[str, ...]] = ("vin", "signal", "ts", "value", "value_text")
#: ``vehicle_state_wide``'s columns as ingest writes them: each signal's latest value and time.
STATE_COLUMNS: Final[tuple[str, ...]] = (
    "vin",
    *(name for c in WIDE_COLUMNS for name in (c.name, f"{c.name}_ts")),
)


def _converter(datatype: Datatype) -> Callable[[float], bool | int | float]:
    # Validation hands every number over as a float (booleans as 0/1); the typed columns want
    # the original type back, and asyncpg's binary COPY refuses a float for an integer column.
    if datatype is Datatype.BOOLEAN:
        return bool
    if datatype in INTEGER_BOUNDS:
        return int
    return float


#: Per column position: float from validation -> the column's Python type.
CONVERTERS: Final[tuple[Callable[[float], bool | int | float], ...]] = tuple(
    _converter(c.datatype) for c in WIDE_COLUMNS
)
