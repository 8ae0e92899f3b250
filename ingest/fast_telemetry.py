"""The fast path of telemetry validation: clean messages straight into column blocks. Pure.

Nearly every message a fleet sends is clean, and per-value Python work is what limits ingest
(ADR 0011). So a message is first offered to :class:`TelemetryBlocks`, which takes it only if it
can show it clean wholesale:

- orjson parses it (it refuses what the full path must judge itself: NaN, invalid UTF-8, lone
  surrogates, nesting past 1,024), and its envelope and samples have the contract's shape;
- each sample's (signal names, value types) pair names a cached :class:`_Plan`: which values go
  to which wide column, and which are long-tail values (judged one by one, as the full path does);
- the wide values of a message, one numpy matrix per plan, lie inside the catalogue's ranges.

Anything else is handed back untouched, and the full validation (``ingest.validation``) judges
it with its reason codes. The fast path never rejects: what it takes is exactly what the full
path would store, and a hypothesis test holds it to that (``tests/ingest/test_fast_telemetry.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from ingest.layout import COLUMNS
from ingest.location_consent import LOCATION_PREFIX
from ingest.store import Batch
from ingest.validation import ACCEPTS, MAX_SEQ, Reading, ValidationLimits, judge, reading
from ingest.wide_block import WideBlock
from protocol.messages import MAX_SAMPLES_PER_MESSAGE, MAX_SIGNALS_PER_SAMPLE

# Bounds the plan cache against a client that invents signal names: past it, start afresh.
MAX_PLANS: Final = 4096
_CONTAINERS: Final = (dict, list)
# orjson turns an integer beyond 64 bits into a float; the full path judges the integer itself.
_HUGE: Final = float(2**63)
_SIGNAL_OF_POSITION: Final = {c.position: c.signal for c in COLUMNS.values()}


@dataclass(frozen=True, slots=True, eq=False)  # one per key of _PLANS: equal only to itself
class _Plan:
    """How to take a sample with one order of signal names and one type per value."""

    usable: bool  # False: a catalogue value of a type only the full check may judge
    wide: Callable[[list[Any]], tuple[Any, ...]]  # the wide values, in column order
    positions: tuple[int, ...]  # their columns (ascending)
    low: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    tail: tuple[tuple[int, str], ...]  # (index, signal) of each long-tail value
    location: npt.NDArray[np.bool_]  # per wide value: a position (needs location consent)
    located: int  # how many wide values are positions


def _getter(indices: list[int]) -> Callable[[list[Any]], tuple[Any, ...]]:
    if not indices:
        return lambda values: ()
    if len(indices) == 1:
        only = indices[0]
        return lambda values: (values[only],)
    return itemgetter(*indices)  # a tuple for 2+ indices


def _make_plan(names: tuple[str, ...], types: tuple[type, ...]) -> _Plan:
    wide: list[tuple[int, int]] = []  # (column position, index in the sample)
    tail: list[tuple[int, str]] = []
    usable = True
    for index, (name, kind) in enumerate(zip(names, types, strict=True)):
        column = COLUMNS.get(name)
        if column is None:
            tail.append((index, name))
            continue
        accepts = ACCEPTS.get(name)
        if accepts is None or kind not in accepts[0]:
            usable = False  # e.g. a float for an integer signal, a text for a number
        wide.append((column.position, index))
    wide.sort()
    positions = tuple(p for p, _ in wide)
    # An unusable plan's ranges are never read; a column without fast acceptance makes it so.
    ranges = [ACCEPTS.get(_SIGNAL_OF_POSITION[p], (frozenset(), 0.0, 0.0)) for p in positions]
    location = [_SIGNAL_OF_POSITION[p].startswith(LOCATION_PREFIX) for p in positions]
    return _Plan(
        usable=usable,
        wide=_getter([i for _, i in wide]),
        positions=positions,
        low=np.array([low for _, low, _ in ranges], dtype=np.float64),
        high=np.array([high for _, _, high in ranges], dtype=np.float64),
        tail=tuple(tail),
        location=np.array(location, dtype=np.bool_),
        located=sum(location),
    )


@dataclass(frozen=True, slots=True)
class Taken:
    """What the batch's accounting needs of a message the fast path took."""

    seq: int
    samples: int


@dataclass(slots=True)
class _Rows:
    """The samples of one plan (and one consent) gathered over the batch."""

    plan: _Plan
    allows_position: bool
    vins: list[str] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    matrices: list[npt.NDArray[np.float64]] = field(default_factory=list)


@dataclass(slots=True)
class _Message:
    """One message's samples, grouped by plan, before its ranges are checked."""

    groups: dict[_Plan, tuple[list[int], list[tuple[Any, ...]]]] = field(default_factory=dict)
    tail: list[Reading] = field(default_factory=list)
    withheld: int = 0


# (signal names, value types) -> plan, shared by every batch.
_PLANS: dict[tuple[tuple[str, ...], tuple[type, ...]], _Plan] = {}


class TelemetryBlocks:
    """The clean telemetry messages of one batch, gathered as column blocks."""

    def __init__(self, *, now_ms: int, limits: ValidationLimits) -> None:
        self._limits = limits
        self._oldest_ms = now_ms - limits.max_age_ms
        self._newest_ms = now_ms + limits.future_tolerance_ms
        self._rows: dict[tuple[_Plan, bool], _Rows] = {}
        self._tail: list[tuple[str, list[Reading]]] = []
        self.withheld = 0  # position values left out of what was taken: no location consent

    def add(self, vin: str, payload: bytes, *, allows_position: bool) -> Taken | None:
        """Take the message if it is clean; None: it is not taken (and nothing of it is)."""
        if len(payload) > self._limits.max_payload_bytes:
            return None
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        envelope = _envelope(document)
        if envelope is None:
            return None
        seq, samples = envelope
        message = self._gather(samples, allows_position)
        if message is None:
            return None
        checked = _checked(message)
        if checked is None:
            return None
        for (plan, ts_ms), matrix in checked:
            rows = self._rows.get((plan, allows_position))
            if rows is None:
                rows = self._rows[(plan, allows_position)] = _Rows(plan, allows_position)
            rows.vins.extend([vin] * len(ts_ms))
            rows.ts_ms.extend(ts_ms)
            rows.matrices.append(matrix)
        if message.tail:
            self._tail.append((vin, message.tail))
        self.withheld += message.withheld
        return Taken(seq, len(samples))

    def _gather(self, samples: list[Any], allows_position: bool) -> _Message | None:
        """The message's samples grouped by plan; None if one is not clean. One loop with
        locals: this runs once per sample of the fleet."""
        message = _Message()
        groups = message.groups
        oldest_ms, newest_ms = self._oldest_ms, self._newest_ms
        for sample in samples:
            if type(sample) is not dict:
                return None
            ts = sample.get("ts")
            signals = sample.get("signals")
            if (
                type(ts) is not int
                or type(signals) is not dict
                or len(signals) > MAX_SIGNALS_PER_SAMPLE
                or not oldest_ms <= ts <= newest_ms
            ):
                return None
            if len(sample) != 2 and any(type(v) in _CONTAINERS for v in sample.values()):
                return None  # only the full path measures nesting depth
            values = list(signals.values())
            key = (tuple(signals), tuple(map(type, values)))
            plan = _PLANS.get(key) or _new_plan(key)
            if not plan.usable:
                return None
            stored = len(plan.positions)
            if not allows_position:
                message.withheld += plan.located
                stored -= plan.located
            if plan.tail:
                taken = _take_tail(plan, values, ts, message, allows_position)
                if taken is None:
                    return None
                stored += taken
            if stored == 0:
                continue  # nothing of the sample is stored: no row (as in the full path)
            group = groups.get(plan)
            if group is None:
                group = groups[plan] = ([], [])
            group[0].append(ts)
            group[1].append(plan.wide(values))
        return message

    def finish(self, batch: Batch) -> bool:
        """Add what was taken to ``batch``. False (and nothing added): a sample (VIN, ts) of
        the blocks meets another in the batch; the caller then builds the whole batch through
        the full path, whose rows merge such samples."""
        blocks = [_block(rows) for rows in self._rows.values()]
        keys = set(batch.wide)
        expected = len(keys)
        for block in blocks:
            keys.update(zip(block.vins, block.ts_ms.tolist(), strict=True))
            expected += len(block)
        if len(keys) != expected:
            return False
        for block in blocks:
            batch.add_block(block)
        for vin, readings in self._tail:
            batch.add_tail(vin, readings)
        batch.positions_withheld += self.withheld
        return True


def _new_plan(key: tuple[tuple[str, ...], tuple[type, ...]]) -> _Plan:
    if len(_PLANS) >= MAX_PLANS:
        _PLANS.clear()
    plan = _PLANS[key] = _make_plan(*key)
    return plan


# Long-tail texts already judged storable, (signal, text): most repeat (an enumeration's value).
_TEXTS_OK: set[tuple[str, str]] = set()
MAX_TEXTS_OK: Final = 65_536


def _take_tail(
    plan: _Plan, values: list[Any], ts: int, message: _Message, allows_position: bool
) -> int | None:
    """Judge the sample's long-tail values as the full path does; how many are stored, or
    None if one is not storable."""
    stored = 0
    for index, name in plan.tail:
        value = values[index]
        if type(value) is str and (name, value) in _TEXTS_OK:
            pass
        elif judge(name, value)[0] is not None or (type(value) is float and abs(value) >= _HUGE):
            return None
        elif type(value) is str:
            if len(_TEXTS_OK) >= MAX_TEXTS_OK:
                _TEXTS_OK.clear()
            _TEXTS_OK.add((name, value))
        if not allows_position and name.startswith(LOCATION_PREFIX):
            message.withheld += 1
            continue
        message.tail.append(reading(name, ts, value))
        stored += 1
    return stored


def _envelope(document: Any) -> tuple[int, list[Any]] | None:
    if type(document) is not dict:
        return None
    seq = document.get("seq")
    samples = document.get("samples")
    if (
        type(seq) is not int
        or not 0 <= seq <= MAX_SEQ
        or type(samples) is not list
        or not 0 < len(samples) <= MAX_SAMPLES_PER_MESSAGE
    ):
        return None
    if len(document) != 2 and any(type(v) in _CONTAINERS for v in document.values()):
        return None
    return seq, samples


def _checked(
    message: _Message,
) -> list[tuple[tuple[_Plan, list[int]], npt.NDArray[np.float64]]] | None:
    """Each plan's values of the message as a matrix, if all lie in their ranges."""
    checked = []
    for plan, (ts_ms, rows) in message.groups.items():
        try:
            matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(plan.positions))
        except (OverflowError, ValueError, TypeError):
            return None  # an integer too large for a float: the full path names the reason
        # NaN fails both comparisons (orjson never yields it, but a matrix could hold one).
        if not ((matrix >= plan.low) & (matrix <= plan.high)).all():
            return None
        checked.append(((plan, ts_ms), matrix))
    return checked


def _block(rows: _Rows) -> WideBlock:
    plan = rows.plan
    values = np.concatenate(rows.matrices)
    positions = plan.positions
    if not rows.allows_position and plan.location.any():
        keep = ~plan.location
        values = values[:, keep]
        positions = tuple(p for p, k in zip(positions, keep.tolist(), strict=True) if k)
    return WideBlock(rows.vins, np.array(rows.ts_ms, dtype=np.int64), positions, values)
