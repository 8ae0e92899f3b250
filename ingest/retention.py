"""Retention on native partitions: drop the daily telemetry partitions that have expired.

Under TimescaleDB the retention policies (``ingest_apply_retention``, migration 004) drop whole
chunks (background job ``policy_retention``), so this is a no-op there. On native range
partitions FleetLink does the same itself: a partition ``telemetry_pYYYYMMDD`` (wide samples) or
``telemetry_tail_pYYYYMMDD`` (the long tail) holds the UTC day [YYYY-MM-DD, +1 day)
(``ingest_ensure_partitions``) and is dropped once *all* of it is older
than the window, i.e. when its end is at or before ``now - retention_days``. Dropping a whole
partition is instantaneous and leaves no dead rows behind, unlike a DELETE; the price is a
granularity of one day, which is also what TimescaleDB's 1-day chunks give.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)

_PARTITION_RE = re.compile(r"telemetry(?:_tail)?_p(\d{8})")
_LIST_PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent IN ('telemetry'::regclass, 'telemetry_tail'::regclass)
"""
_HAS_TIMESCALEDB = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
# The key ingest_ensure_partitions locks: creating and dropping partitions never interleave.
_PARTITION_DDL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ingest_ensure_partitions'))"


def partition_day(name: str) -> datetime | None:
    """The UTC day a ``telemetry[_tail]_pYYYYMMDD`` partition holds (its start), or None for a table
    that is not one of ours."""
    match = _PARTITION_RE.fullmatch(name)
    return None if match is None else datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC)


def expired_partitions(names: list[str], *, retention_days: int, now: datetime) -> list[str]:
    """The daily partitions among ``names`` whose whole day lies before the window, sorted."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if retention_days < 1:
        raise ValueError(f"retention_days must be >= 1, got {retention_days}")
    cutoff = now.astimezone(UTC) - timedelta(days=retention_days)
    expired = []
    for name in names:
        day_start = partition_day(name)
        if day_start is None:
            continue  # not one of ours (e.g. an operator's DEFAULT partition): leave it alone
        if day_start + timedelta(days=1) <= cutoff:
            expired.append(name)
    return sorted(expired)


async def drop_expired_partitions(
    conn: asyncpg.Connection, *, retention_days: int, now: datetime
) -> list[str]:
    """Drop the telemetry partitions entirely older than ``retention_days`` before ``now``.

    Returns the names dropped (oldest first); ``[]`` under TimescaleDB, whose retention policy
    drops chunks itself.
    """
    if await conn.fetchval(_HAS_TIMESCALEDB):
        return []
    async with conn.transaction():
        await conn.execute(_PARTITION_DDL_LOCK)
        names = [r["relname"] for r in await conn.fetch(_LIST_PARTITIONS)]
        expired = expired_partitions(names, retention_days=retention_days, now=now)
        for name in expired:
            await conn.execute(f'DROP TABLE "{name}"')  # name matched _PARTITION_RE
    if expired:
        log.info("dropped %d expired telemetry partitions: %s", len(expired), ", ".join(expired))
    return expired
