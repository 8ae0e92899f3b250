"""Counting, from the database, what the benchmark's load left behind: every value the
publishers had acknowledged (PUBACK) against the values stored.

A sample is (VIN, ts); the publishers report how many values each sample held, so a sample is
lost when fewer values than that carry its (VIN, ts) (counted through the ``telemetry_values``
view, whichever table holds them) and every missing one is a lost value. Duplicates are values
beyond one per (VIN, signal, ts) (the primary keys should make that zero) plus the messages
ingest itself counted as resent (``ingest_sequences.duplicates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from bench.publisher import SAMPLE_SPACING_MS, SAMPLES_PER_MESSAGE

_SAMPLES_STORED = """
SELECT vin, round(extract(epoch FROM ts) * 1000)::bigint AS ts_ms, count(*) AS n
FROM telemetry_values GROUP BY vin, ts
"""
_DUPLICATE_ROWS = """
SELECT coalesce(sum(n - 1), 0)::bigint FROM (
    SELECT count(*) AS n FROM telemetry_values GROUP BY vin, signal, ts HAVING count(*) > 1
) d
"""
_SEQUENCES = """
SELECT coalesce(sum(duplicates), 0)::bigint AS duplicates, coalesce(sum(gaps), 0)::bigint AS gaps
FROM ingest_sequences
"""


@dataclass(frozen=True)
class Audit:
    messages_sent: int
    samples_sent: int
    values_sent: int
    rows: int
    lost_values: int
    lost_samples: int
    unexpected_rows: int  # rows of samples nobody reported sending
    duplicate_rows: int
    duplicate_messages: int
    seq_gaps: int
    dead_letters: int

    @property
    def duplicates(self) -> int:
        return self.duplicate_rows + self.duplicate_messages


def expected_samples(
    vins: Sequence[str], messages: Sequence[Sequence[int]]
) -> dict[tuple[str, int], int]:
    """(VIN, ts) -> number of values, from the publishers' ``[car, seq, newest ts, n0..n4]``."""
    expected: dict[tuple[str, int], int] = {}
    for car, _seq, newest_ms, *counts in messages:
        for back, count in zip(range(SAMPLES_PER_MESSAGE - 1, -1, -1), counts, strict=True):
            expected[(vins[car], newest_ms - back * SAMPLE_SPACING_MS)] = count
    return expected


async def audit(
    conn: asyncpg.Connection,
    vins: Sequence[str],
    messages: Sequence[Sequence[int]],
    unconfirmed: Sequence[Sequence[int]] = (),
) -> Audit:
    """``messages``: acknowledged by the broker, must all be stored. ``unconfirmed``: published
    without a PUBACK: they may or may not be stored, and count neither way."""
    expected = expected_samples(vins, messages)
    maybe = expected_samples(vins, unconfirmed)
    lost_values = lost_samples = unexpected = rows = 0
    seen: set[tuple[str, int]] = set()
    for record in await conn.fetch(_SAMPLES_STORED):
        key = (record["vin"], record["ts_ms"])
        stored: int = record["n"]
        rows += stored
        want = expected.get(key)
        if want is None:
            if key not in maybe:
                unexpected += stored
            continue
        seen.add(key)
        if stored < want:
            lost_samples += 1
            lost_values += want - stored
        elif stored > want:
            unexpected += stored - want
    for key, want in expected.items():
        if key not in seen:
            lost_samples += 1
            lost_values += want
    sequences = await conn.fetchrow(_SEQUENCES)
    return Audit(
        messages_sent=len(messages),
        samples_sent=len(expected),
        values_sent=sum(expected.values()),
        rows=rows,
        lost_values=lost_values,
        lost_samples=lost_samples,
        unexpected_rows=unexpected,
        duplicate_rows=await conn.fetchval(_DUPLICATE_ROWS),
        duplicate_messages=sequences["duplicates"],
        seq_gaps=sequences["gaps"],
        dead_letters=await conn.fetchval("SELECT count(*) FROM dead_letters"),
    )
