"""Alerts in PostgreSQL: one active alert per key, updates, resolution, outbox events."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from diagnostics.alert_store import (
    AlertAlreadyResolvedError,
    AlertNotFoundError,
    AlertStore,
    resolve_alerts,
)
from diagnostics.findings import AlertType, Clearance, Finding, Severity
from diagnostics.lifecycle import Resolution, Source, Status

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)
VIN = "WVWZZZ1JZXW000001"


def leak(severity: Severity = Severity.WARNING, *, days: int = 20, at: datetime = T0) -> Finding:
    return Finding(
        VIN,
        AlertType.TIRE_SLOW_LEAK,
        "Row1.Left",
        severity,
        at,
        "Have the left front tyre checked.",
        confidence=0.9,
        predicted_failure_at=at + timedelta(days=days),
        evidence={"slope_kpa_per_day": -3.1, "cold_pressure_kpa": 215.0},
    )


async def outbox(pool: asyncpg.Pool) -> list[tuple[str, dict[str, object]]]:
    rows = await pool.fetch("SELECT topic, payload::text AS p FROM outbox ORDER BY id")
    return [(r["topic"], json.loads(r["p"])) for r in rows]


async def test_open_update_resolve_with_outbox_events(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool)
    opened = await store.apply(Source.TREND, [leak()], now=T0)
    assert len(opened.opened) == 1
    alert = opened.opened[0]
    assert alert.status is Status.OPEN
    assert alert.detected_at == T0
    assert alert.evidence["cold_pressure_kpa"] == 215.0

    # Processing the same findings twice is idempotent.
    assert (await store.apply(Source.TREND, [leak()], now=T0)).count == 0

    later = T0 + timedelta(days=3)
    updated = await store.apply(Source.TREND, [leak(days=6, at=later)], now=later)
    assert [a.id for a in updated.updated] == [alert.id]
    assert updated.updated[0].predicted_failure_at == later + timedelta(days=6)

    cleared = Clearance(VIN, AlertType.TIRE_SLOW_LEAK, "Row1.Left", later, "refilled")
    resolved = await store.apply(Source.TREND, [], [cleared], now=later)
    assert resolved.resolved[0].resolution == "evidence_cleared"

    events = await outbox(pool)
    assert [topic for topic, _ in events] == ["alert.opened", "alert.updated", "alert.resolved"]
    assert events[0][1]["id"] == alert.id
    assert events[0][1]["type"] == "tire_slow_leak"
    assert events[1][1]["escalated"] is False
    assert events[2][1]["status"] == "resolved"

    # After resolution the same condition opens a new alert.
    reopened = await store.apply(Source.TREND, [leak(at=later + timedelta(days=1))], now=later)
    assert reopened.opened[0].id != alert.id


async def test_two_engines_share_one_alert(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool)
    await store.apply(Source.TREND, [leak()], now=T0)
    escalated = await store.apply(Source.STREAM, [leak(Severity.CRITICAL, days=0)], now=T0)
    assert escalated.updated[0].severity is Severity.CRITICAL
    assert set(escalated.updated[0].sources) == {"stream", "trend"}
    assert await pool.fetchval("SELECT count(*) FROM alerts") == 1
    cleared = Clearance(VIN, AlertType.TIRE_SLOW_LEAK, "Row1.Left", T0, "above threshold")
    await store.apply(Source.STREAM, [], [cleared], now=T0)
    row = await pool.fetchrow("SELECT status, sources FROM alerts")
    assert (row["status"], row["sources"]) == ("open", ["trend"])


async def test_concurrent_engines_never_open_two_alerts(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool)
    await asyncio.gather(
        *(
            store.apply(source, [leak()], now=T0)
            for _ in range(5)
            for source in (Source.TREND, Source.STREAM)
        )
    )
    assert await pool.fetchval("SELECT count(*) FROM alerts") == 1


async def test_acknowledge_and_escalation_reopens(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool)
    alert = (await store.apply(Source.TREND, [leak()], now=T0)).opened[0]
    acked = await store.acknowledge(alert.id, by="customer:x", now=T0)
    assert acked.status is Status.ACKNOWLEDGED
    assert (await store.acknowledge(alert.id, by="customer:x", now=T0)).revision == acked.revision
    worse = await store.apply(Source.TREND, [leak(Severity.CRITICAL, days=3)], now=T0)
    assert worse.updated[0].status is Status.OPEN
    with pytest.raises(AlertNotFoundError):
        await store.acknowledge(999, by="x", now=T0)


async def test_a_work_order_resolution_is_final_for_older_data(pool: asyncpg.Pool) -> None:
    store = AlertStore(pool)
    alert = (await store.apply(Source.TREND, [leak()], now=T0)).opened[0]
    repaired = T0 + timedelta(days=1)
    async with pool.acquire() as conn, conn.transaction():
        done = await resolve_alerts(
            conn, [alert.id], now=repaired, resolution=Resolution.WORK_ORDER, work_order_id=5
        )
    assert done[0].work_order_id == 5
    with pytest.raises(AlertAlreadyResolvedError):
        await store.acknowledge(alert.id, by="x", now=repaired)
    # The trend still computed from the old tyre's data: ignored.
    assert (await store.apply(Source.TREND, [leak(at=T0)], now=repaired)).count == 0
    assert (await store.apply(Source.TREND, [leak(at=repaired + timedelta(days=2))], now=T0)).opened
