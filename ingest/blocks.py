"""Samples as column blocks, and their binary COPY encoding. Pure: no I/O.

A :class:`WideBlock` holds samples that carry the same wide columns: their VINs, their times and
one matrix of values (a row per sample, a column per signal). A :class:`TailBlock` holds the
long-tail values of one signal that share one text (or are all numbers). The hot path of ingest
keeps clean telemetry in this form from the parse to the database, because everything per value
in Python is what limits ingest (ADR 0011): validation checks a block's ranges with numpy, and
:func:`copy_payload` writes PostgreSQL's binary COPY format with numpy too, a structured array
per block, so no Python object is made per value on the way to the database.

The binary format (PostgreSQL docs, "COPY", section "Binary Format"): a header, then per row a
16-bit field count and per field a 32-bit length (-1 for NULL) and the value in network byte
order; a trailer of -1. ``timestamptz`` is microseconds since 2000-01-01 UTC as int64.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ingest.layout import CONVERTERS, WIDE_COLUMNS
from protocol.catalogue import Datatype
from protocol.clock import utc_from_ms
from protocol.vin import VIN_LENGTH

COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER: Final = struct.pack(">h", -1)
_PG_EPOCH_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
_FIELDS: Final = 2 + len(WIDE_COLUMNS)  # vin, ts, one per wide column
# A column's binary form: (numpy type in network byte order, its size in bytes).
_BINARY: Final[dict[str, tuple[str, int]]] = {
    "boolean": ("u1", 1),
    "smallint": (">i2", 2),
    "integer": (">i4", 4),
    "bigint": (">i8", 8),
    "double precision": (">f8", 8),
}


@dataclass(frozen=True, slots=True)
class WideBlock:
    """Samples of one set of wide columns: ``values[i, j]`` is sample i's value of the column
    at position ``positions[j]`` (ascending), booleans as 0/1, every value validated."""

    vins: list[str]
    ts_ms: npt.NDArray[np.int64]
    positions: tuple[int, ...]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.vins)

    def samples(self) -> Iterator[tuple[str, int, list[Any]]]:
        """(VIN, ts ms, value or None per wide column) of each row, values in their columns'
        Python types."""
        converters = [CONVERTERS[p] for p in self.positions]
        for vin, ts_ms, values in zip(
            self.vins, self.ts_ms.tolist(), self.values.tolist(), strict=True
        ):
            row: list[Any] = [None] * len(WIDE_COLUMNS)
            for position, convert, value in zip(self.positions, converters, values, strict=True):
                row[position] = convert(value)
            yield vin, ts_ms, row

    def rows(self) -> list[list[Any]]:
        """The rows as ``Batch.wide`` holds them: [vin, ts, value or None per column]."""
        return [[vin, utc_from_ms(ts_ms), *values] for vin, ts_ms, values in self.samples()]

    def newest_per_vin(self) -> dict[str, tuple[datetime, list[bool | int | float]]]:
        """Per VIN, its newest sample's time and values (converted to the columns' types)."""
        ts_ms = self.ts_ms.tolist()
        converters = [CONVERTERS[p] for p in self.positions]
        return {
            vin: (
                utc_from_ms(ts_ms[index]),
                [c(v) for c, v in zip(converters, self.values[index].tolist(), strict=True)],
            )
            for vin, index in _newest_per_vin(self.vins, self.ts_ms).items()
        }


@dataclass(frozen=True, slots=True)
class TailBlock:
    """Long-tail values of one signal: all the text ``text``, or (``text`` None) numbers in
    ``values`` (booleans as 0/1); a row per sample."""

    signal: str
    text: str | None
    vins: list[str]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64] | None

    def __len__(self) -> int:
        return len(self.vins)

    def row(self, index: int) -> tuple[str, str, datetime, float | None, str | None]:
        """One row as ``Batch.tail`` holds them: (vin, signal, ts, value, text)."""
        value = None if self.values is None else float(self.values[index])
        ts = utc_from_ms(int(self.ts_ms[index]))
        return (self.vins[index], self.signal, ts, value, self.text)

    def rows(self) -> list[tuple[str, str, datetime, float | None, str | None]]:
        return [self.row(i) for i in range(len(self))]

    def newest_per_vin(self) -> dict[str, tuple[str, str, datetime, float | None, str | None]]:
        return {vin: self.row(i) for vin, i in _newest_per_vin(self.vins, self.ts_ms).items()}


def _newest_per_vin(vins: list[str], ts_ms: npt.NDArray[np.int64]) -> dict[str, int]:
    """VIN -> the index of its newest row."""
    newest: dict[str, int] = {}
    for index in np.argsort(ts_ms, kind="stable").tolist():
        newest[vins[index]] = index  # ascending time: the last one kept is the newest
    return newest


@functools.lru_cache(maxsize=1024)
def _record_type(positions: tuple[int, ...]) -> np.dtype[np.void]:
    """A row of the binary COPY format as a numpy record: fixed size, because every row of a
    block has the same columns present (and every VIN the same length)."""
    present = set(positions)
    fields: list[tuple[str, str]] = [
        ("fields", ">i2"),
        ("vin_len", ">i4"),
        ("vin", f"S{VIN_LENGTH}"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
    ]
    for column in WIDE_COLUMNS:
        fields.append((f"len{column.position}", ">i4"))
        if column.position in present:
            fields.append((f"v{column.position}", _BINARY[column.sql_type][0]))
    return np.dtype(fields)


def _vins(vins: list[str]) -> npt.NDArray[np.bytes_]:
    joined = "".join(vins)
    if len(joined) != VIN_LENGTH * len(vins) or not joined.isascii():
        raise ValueError(f"a VIN of the block is not {VIN_LENGTH} ASCII characters")
    return np.frombuffer(joined.encode("ascii"), dtype=f"S{VIN_LENGTH}")


def _timestamps(ts_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return (ts_ms - _PG_EPOCH_MS) * 1000


def encode_block(block: WideBlock) -> npt.NDArray[np.void]:
    """The block's rows in binary COPY form (no header or trailer), in the table's column
    order (``ingest.layout.TELEMETRY_COLUMNS``), as a record array (its buffer is the data)."""
    records = np.empty(len(block), dtype=_record_type(block.positions))
    records["fields"] = _FIELDS
    records["vin_len"] = VIN_LENGTH
    records["vin"] = _vins(block.vins)
    records["ts_len"] = 8
    records["ts"] = _timestamps(block.ts_ms)
    # Swapping bytes once for the whole matrix, then copying columns, is about twice as fast
    # as converting column by column into the (unaligned) record fields.
    swapped = block.values.astype(">f8")
    present = dict(zip(block.positions, range(len(block.positions)), strict=True))
    for column in WIDE_COLUMNS:
        index = present.get(column.position)
        if index is None:
            records[f"len{column.position}"] = -1  # NULL
            continue
        numpy_type, size = _BINARY[column.sql_type]
        records[f"len{column.position}"] = size
        if column.datatype is Datatype.BOOLEAN:
            records[f"v{column.position}"] = block.values[:, index] != 0
        elif numpy_type == ">f8":
            records[f"v{column.position}"] = swapped[:, index]
        else:
            records[f"v{column.position}"] = block.values[:, index].astype(numpy_type)
    return records


def encode_tail_block(block: TailBlock) -> npt.NDArray[np.void]:
    """The block's rows in binary COPY form, in ``ingest.layout.TAIL_COLUMNS`` order."""
    signal = block.signal.encode()
    text = None if block.text is None else block.text.encode()
    fields: list[tuple[str, str]] = [
        ("fields", ">i2"),
        ("vin_len", ">i4"),
        ("vin", f"S{VIN_LENGTH}"),
        ("signal_len", ">i4"),
        ("signal", f"V{len(signal)}"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        ("value_len", ">i4"),
    ]
    if block.values is not None:
        fields.append(("value", ">f8"))
    fields.append(("text_len", ">i4"))
    if text:
        fields.append(("text", f"V{len(text)}"))
    records = np.empty(len(block), dtype=np.dtype(fields))
    records["fields"] = 5
    records["vin_len"] = VIN_LENGTH
    records["vin"] = _vins(block.vins)
    records["signal_len"] = len(signal)
    # Raw bytes ("V"), not "S": a fixed-size string field would drop trailing NUL bytes.
    records["signal"] = np.frombuffer(signal, dtype=f"V{len(signal)}")[0] if signal else b""
    records["ts_len"] = 8
    records["ts"] = _timestamps(block.ts_ms)
    records["value_len"] = -1 if block.values is None else 8
    if block.values is not None:
        records["value"] = block.values
    records["text_len"] = -1 if text is None else len(text)
    if text:
        records["text"] = np.frombuffer(text, dtype=f"V{len(text)}")[0]
    return records


def copy_payload(blocks: Sequence[WideBlock | TailBlock]) -> bytes:
    """A whole binary COPY stream of the blocks' rows: wide blocks into ``telemetry`` (or its
    stage), tail blocks into ``telemetry_tail`` (or its stage); never both kinds in one."""
    encoded = (
        encode_block(b) if isinstance(b, WideBlock) else encode_tail_block(b) for b in blocks
    )
    return b"".join((COPY_HEADER, *(records.data for records in encoded), COPY_TRAILER))
