"""The duplicate-message counter the fault tests read (``ingest_sequences.duplicates``) must count
every redelivered message, including several of one vehicle in one batch: after a worker dies
between commit and PUBACK, the broker redelivers a run of already committed messages, and they
usually arrive together in the next worker's first batch."""

from __future__ import annotations

import asyncpg
import pytest

from ingest.store import Batch, TelemetryStore

pytestmark = pytest.mark.integration

VIN = "WF0RLTST000000001"


def batch_of_seqs(*seqs: int) -> Batch:
    batch = Batch()
    for seq in seqs:
        batch.add_seq(VIN, seq)
    return batch


async def test_a_batch_redelivering_several_committed_messages_counts_each(
    pool: asyncpg.Pool,
) -> None:
    store = TelemetryStore(pool)
    await store.write(batch_of_seqs(1, 2, 3))  # committed; the PUBACKs for 2 and 3 were lost
    await store.write(batch_of_seqs(2, 3, 4))  # the broker redelivers 2 and 3, then 4 is new
    row = await pool.fetchrow("SELECT last_seq, gaps, duplicates FROM ingest_sequences")
    assert row is not None
    assert dict(row) == {"last_seq": 4, "gaps": 0, "duplicates": 2}
