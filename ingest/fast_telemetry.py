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
from itertools import chain
from operator import itemgetter
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from ingest.blocks import TailBlock, WideBlock
from ingest.layout import COLUMNS
from ingest.location_consent import LOCATION_PREFIX
from ingest.store import Batch
from ingest.validation import ACCEPTS, MAX_SEQ, ValidationLimits, judge
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
    tail_names: tuple[str, ...]  # the long-tail signals, in the sample's order
    tail: Callable[[list[Any]], tuple[Any, ...]]  # their values
    location: npt.NDArray[np.bool_]  # per wide value: a position (needs location consent)
    located: int  # how many wide values are positions
    tail_located: tuple[bool, ...]  # per long-tail signal: a position
    # Long-tail value tuples judged storable already (most repeat: an enumeration's value).
    tails_ok: set[tuple[Any, ...]] = field(default_factory=set)


def _getter(indices: list[int]) -> Callable[[list[Any]], tuple[Any, ...]]:
    if not indices:
        return lambda values: ()
    if len(indices) == 1:
        only = indices[0]
        return lambda values: (values[only],)
    return itemgetter(*indices)  # a tuple for 2+ indices


def _make_plan(names: tuple[str, ...], types: tuple[type, ...]) -> _Plan:
    wide: list[tuple[int, int]] = []  # (column position, index in the sample)
    tail: list[int] = []
    usable = True
    for index, (name, kind) in enumerate(zip(names, types, strict=True)):
        column = COLUMNS.get(name)
        if column is None:
            # A container is never storable (and not hashable for ``tails_ok``).
            usable = usable and kind not in _CONTAINERS
            tail.append(index)
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
        tail_names=tuple(names[i] for i in tail),
        tail=_getter(tail),
        location=np.array(location, dtype=np.bool_),
        located=sum(location),
        tail_located=tuple(names[i].startswith(LOCATION_PREFIX) for i in tail),
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
    tails: list[tuple[Any, ...]] = field(default_factory=list)  # per row, if the plan has a tail


@dataclass(slots=True)
class _Group:
    """The samples of one plan in one message."""

    ts_ms: list[int] = field(default_factory=list)
    wide: list[tuple[Any, ...]] = field(default_factory=list)
    tails: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(slots=True)
class _Message:
    """One message's samples, grouped by plan, before its ranges are checked."""

    groups: dict[_Plan, _Group] = field(default_factory=dict)
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
        for (plan, group), matrix in checked:
            rows = self._rows.get((plan, allows_position))
            if rows is None:
                rows = self._rows[(plan, allows_position)] = _Rows(plan, allows_position)
            rows.vins.extend([vin] * len(group.ts_ms))
            rows.ts_ms.extend(group.ts_ms)
            rows.matrices.append(matrix)
            rows.tails.extend(group.tails)
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
            tail: tuple[Any, ...] = ()
            if plan.tail_names:
                tail = plan.tail(values)
                if tail not in plan.tails_ok and not _tail_storable(plan, tail):
                    return None
                if allows_position:
                    stored += len(tail)
                else:
                    located = sum(plan.tail_located)
                    message.withheld += located
                    stored += len(tail) - located
            if stored == 0:
                continue  # nothing of the sample is stored: no row (as in the full path)
            group = groups.get(plan)
            if group is None:
                group = groups[plan] = _Group()
            group.ts_ms.append(ts)
            group.wide.append(plan.wide(values))
            if plan.tail_names:
                group.tails.append(tail)
        return message

    def finish(self, batch: Batch) -> bool:
        """Add what was taken to ``batch``. False (and nothing added): a sample (VIN, ts) of
        the blocks meets another in the batch; the caller then builds the whole batch through
        the full path, whose rows merge such samples."""
        blocks = [_wide_block(rows) for rows in self._rows.values()]
        keys = set(batch.wide)
        expected = len(keys)
        for block in blocks:
            keys.update(zip(block.vins, block.ts_ms.tolist(), strict=True))
            expected += len(block)
        if len(keys) != expected:
            return False
        for block in blocks:
            batch.add_block(block)
        for rows in self._rows.values():
            for tail_block in _tail_blocks(rows):
                batch.add_tail_block(tail_block)
        batch.positions_withheld += self.withheld
        return True


def _new_plan(key: tuple[tuple[str, ...], tuple[type, ...]]) -> _Plan:
    if len(_PLANS) >= MAX_PLANS:
        _PLANS.clear()
    plan = _PLANS[key] = _make_plan(*key)
    return plan


MAX_TAILS_OK: Final = 1024  # per plan: continuous unknown signals never repeat


def _tail_storable(plan: _Plan, tail: tuple[Any, ...]) -> bool:
    """The sample's long-tail values judged as the full path does."""
    for name, value in zip(plan.tail_names, tail, strict=True):
        if judge(name, value)[0] is not None or (type(value) is float and abs(value) >= _HUGE):
            return False
    if len(plan.tails_ok) < MAX_TAILS_OK:
        plan.tails_ok.add(tail)
    return True


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
) -> list[tuple[tuple[_Plan, _Group], npt.NDArray[np.float64]]] | None:
    """Each plan's values of the message as a matrix, if all lie in their ranges."""
    checked = []
    for plan, group in message.groups.items():
        rows, width = group.wide, len(plan.positions)
        try:
            # fromiter over the flattened rows: a fifth faster than np.array on the nested list.
            matrix = np.fromiter(
                chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width
            ).reshape(len(rows), width)
        except (OverflowError, ValueError, TypeError):
            return None  # an integer too large for a float: the full path names the reason
        # NaN fails both comparisons (orjson never yields it, but a matrix could hold one).
        if not ((matrix >= plan.low) & (matrix <= plan.high)).all():
            return None
        checked.append(((plan, group), matrix))
    return checked


def _wide_block(rows: _Rows) -> WideBlock:
    plan = rows.plan
    values = np.concatenate(rows.matrices)
    positions = plan.positions
    if not rows.allows_position and plan.location.any():
        keep = ~plan.location
        values = values[:, keep]
        positions = tuple(p for p, k in zip(positions, keep.tolist(), strict=True) if k)
    return WideBlock(rows.vins, np.array(rows.ts_ms, dtype=np.int64), positions, values)


def _tail_blocks(rows: _Rows) -> list[TailBlock]:
    """The long-tail values of the rows, a block per (signal, text) and per numeric signal."""
    blocks: list[TailBlock] = []
    for index, name in enumerate(rows.plan.tail_names):
        if not rows.allows_position and rows.plan.tail_located[index]:
            continue
        by_value: dict[Any, tuple[list[str], list[int], list[float]]] = {}
        for vin, ts_ms, tail in zip(rows.vins, rows.ts_ms, rows.tails, strict=True):
            value = tail[index]
            # A text is its own block; numbers (booleans as 0/1) share one.
            key = value if type(value) is str else None
            found = by_value.get(key)
            if found is None:
                found = by_value[key] = ([], [], [])
            found[0].append(vin)
            found[1].append(ts_ms)
            if key is None:
                found[2].append(float(value))
        for text, (vins, ts_ms_list, numbers) in by_value.items():
            blocks.append(
                TailBlock(
                    name,
                    text,
                    vins,
                    np.array(ts_ms_list, dtype=np.int64),
                    np.array(numbers, dtype=np.float64) if text is None else None,
                )
            )
    return blocks
