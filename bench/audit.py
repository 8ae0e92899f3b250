"""Counting, from the database, what the benchmark's load left behind: every value the
publishers had acknowledged (PUBACK) against the values stored.

A sample is (VIN, ts); the publishers report how many values each sample held (see
:mod:`bench.publisher` for the record layout), so a sample is lost when fewer values than that
carry its (VIN, ts) (counted through the ``telemetry_values`` view, whichever table holds them)
and every missing one is a lost value. Duplicates are values beyond one per (VIN, signal, ts)
(the primary keys should make that zero) plus the messages ingest itself counted as resent
(``ingest_sequences.duplicates``).

The comparison runs in PostgreSQL: the expected samples are streamed into a temporary table
(COPY) and joined with the stored ones, so a run of millions of samples costs no memory here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import asyncpg

from bench.publisher import message_samples

_EXPECTED = "bench_expected"
_CREATE_EXPECTED = f"""
CREATE TEMPORARY TABLE {_EXPECTED} (
    vin text NOT NULL, ts_ms bigint NOT NULL, n integer NOT NULL, confirmed boolean NOT NULL
)
"""
# Stored samples against expected ones, in one pass over the values. An unconfirmed sample
# (published without a PUBACK) may or may not be stored: its rows count neither as lost nor as
# unexpected. Duplicates are rows beyond one per (VIN, signal, ts): counted per sample here, which
# is much cheaper than grouping millions of values by (VIN, signal, ts).
_COMPARE = f"""
WITH stored AS (
    SELECT vin, round(extract(epoch FROM ts) * 1000)::bigint AS ts_ms, count(*) AS n,
        count(DISTINCT signal) AS signals
    FROM telemetry_values GROUP BY vin, ts
), matched AS (
    SELECT coalesce(s.n, 0) AS stored, coalesce(s.n - s.signals, 0) AS duplicates,
        e.n AS wanted, e.confirmed
    FROM stored AS s FULL JOIN {_EXPECTED} AS e ON s.vin = e.vin AND s.ts_ms = e.ts_ms
)
SELECT
    coalesce(sum(stored), 0)::bigint AS rows,
    coalesce(sum(duplicates), 0)::bigint AS duplicate_rows,
    count(*) FILTER (WHERE confirmed AND stored < wanted) AS lost_samples,
    coalesce(sum(wanted - stored) FILTER (WHERE confirmed AND stored < wanted), 0)::bigint
        AS lost_values,
    (coalesce(sum(stored) FILTER (WHERE wanted IS NULL), 0)
        + coalesce(sum(stored - wanted) FILTER (WHERE confirmed AND stored > wanted), 0))::bigint
        AS unexpected
FROM matched
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


@dataclass
class _Sent:
    samples: int = 0
    values: int = 0


def expected_samples(
    vins: Sequence[str], messages: Sequence[Sequence[int]], spacing_ms: int
) -> Iterator[tuple[str, int, int]]:
    """(VIN, ts, number of values) of every sample of the publishers' records."""
    for record in messages:
        vin = vins[record[0]]
        for ts, count in message_samples(record, spacing_ms):
            yield vin, ts, count


def _expected_rows(
    vins: Sequence[str],
    messages: Sequence[Sequence[int]],
    unconfirmed: Sequence[Sequence[int]],
    spacing_ms: int,
    sent: _Sent,
) -> Iterator[tuple[str, int, int, bool]]:
    for vin, ts, count in expected_samples(vins, messages, spacing_ms):
        sent.samples += 1
        sent.values += count
        yield vin, ts, count, True
    for vin, ts, count in expected_samples(vins, unconfirmed, spacing_ms):
        yield vin, ts, count, False


async def audit(
    conn: asyncpg.Connection,
    vins: Sequence[str],
    messages: Sequence[Sequence[int]],
    unconfirmed: Sequence[Sequence[int]] = (),
    *,
    spacing_ms: int,
) -> Audit:
    """``messages``: acknowledged by the broker, must all be stored. ``unconfirmed``: published
    without a PUBACK: they may or may not be stored, and count neither way. ``spacing_ms``: the
    publishers' ``sample_spacing_ms``."""
    sent = _Sent()
    await conn.execute(_CREATE_EXPECTED)
    try:
        await conn.copy_records_to_table(
            _EXPECTED, records=_expected_rows(vins, messages, unconfirmed, spacing_ms, sent)
        )
        await conn.execute(f"ANALYZE {_EXPECTED}")
        compared = await conn.fetchrow(_COMPARE)
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {_EXPECTED}")
    sequences = await conn.fetchrow(_SEQUENCES)
    return Audit(
        messages_sent=len(messages),
        samples_sent=sent.samples,
        values_sent=sent.values,
        rows=compared["rows"],
        lost_values=compared["lost_values"],
        lost_samples=compared["lost_samples"],
        unexpected_rows=compared["unexpected"],
        duplicate_rows=compared["duplicate_rows"],
        duplicate_messages=sequences["duplicates"],
        seq_gaps=sequences["gaps"],
        dead_letters=await conn.fetchval("SELECT count(*) FROM dead_letters"),
    )
