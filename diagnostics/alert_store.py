"""Alerts in PostgreSQL: apply the engines' findings through the lifecycle, acknowledge,
resolve, list. Every change appends an outbox event (``alert.opened``, ``alert.updated``,
``alert.acknowledged``, ``alert.resolved``) in the same transaction (ADR 0007); its payload is
:meth:`AlertRecord.payload`, the alert's public JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from diagnostics.findings import Clearance, Evidence, Finding, Severity
from diagnostics.lifecycle import (
    ActiveAlert,
    Decision,
    OpenAlert,
    Resolution,
    ResolveAlert,
    Source,
    Status,
    UpdateAlert,
    WithdrawSource,
    decide_clearance,
    decide_finding,
)
from diagnostics.outbox import append

Key = tuple[str, str, str]


class AlertError(Exception):
    code = "alert_error"


class AlertNotFoundError(AlertError):
    code = "alert_not_found"

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"no alert {alert_id}")
        self.alert_id = alert_id


class AlertAlreadyResolvedError(AlertError):
    code = "alert_resolved"

    def __init__(self, alert_id: int) -> None:
        super().__init__(f"alert {alert_id} is already resolved")
        self.alert_id = alert_id


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    vin: str
    type: str
    component: str
    status: Status
    severity: Severity
    sources: tuple[str, ...]
    opened_at: datetime
    updated_at: datetime
    detected_at: datetime
    observed_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolution: str | None
    work_order_id: int | None
    predicted_failure_at: datetime | None
    confidence: float
    evidence: Evidence
    recommended_action: str
    revision: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AlertRecord:
        values = dict(row)
        evidence = values.pop("evidence")
        return cls(
            **{
                **values,
                "status": Status(values["status"]),
                "severity": Severity(values["severity"]),
                "sources": tuple(values["sources"]),
                "confidence": round(float(values["confidence"]), 4),
                "evidence": json.loads(evidence) if isinstance(evidence, str) else evidence,
            }
        )

    def payload(self) -> dict[str, Any]:
        """The public JSON of the alert (outbox payloads and the API)."""
        return {
            "id": self.id,
            "vin": self.vin,
            "type": self.type,
            "component": self.component,
            "status": self.status.value,
            "severity": self.severity.value,
            "opened_at": self.opened_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "detected_at": self.detected_at.isoformat(),
            "acknowledged_at": _iso(self.acknowledged_at),
            "resolved_at": _iso(self.resolved_at),
            "resolution": self.resolution,
            "work_order_id": self.work_order_id,
            "predicted_failure_at": _iso(self.predicted_failure_at),
            "confidence": self.confidence,
            "evidence": self.evidence,
            "recommended_action": self.recommended_action,
        }

    def active(self) -> ActiveAlert:
        return ActiveAlert(
            id=self.id,
            status=self.status,
            severity=self.severity,
            sources=frozenset(Source(s) for s in self.sources),
            observed_at=self.observed_at,
            predicted_failure_at=self.predicted_failure_at,
            confidence=self.confidence,
            recommended_action=self.recommended_action,
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class AppliedChanges:
    opened: list[AlertRecord] = field(default_factory=list)
    updated: list[AlertRecord] = field(default_factory=list)
    resolved: list[AlertRecord] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.opened) + len(self.updated) + len(self.resolved)


_COLUMNS = (
    "id, vin, type, component, status, severity, sources, opened_at, updated_at, detected_at,"
    " observed_at, acknowledged_at, acknowledged_by, resolved_at, resolution, work_order_id,"
    " predicted_failure_at, confidence, evidence::text AS evidence, recommended_action, revision"
)
_RETURNING = "RETURNING " + _COLUMNS


async def _lock_vehicles(conn: asyncpg.Connection, vins: Iterable[str]) -> None:
    """Serialise writers per vehicle (the stream and trend engines may decide about the same
    key at once); sorted, so two writers never wait on each other in a cycle."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('alerts:' || v)) FROM unnest($1::text[]) v "
        "ORDER BY v",
        sorted(set(vins)),
    )


async def _active(conn: asyncpg.Connection, vins: list[str]) -> dict[Key, AlertRecord]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM alerts WHERE status <> 'resolved' AND vin = ANY($1::text[])",
        vins,
    )
    records = [AlertRecord.from_row(r) for r in rows]
    return {(r.vin, r.type, r.component): r for r in records}


async def _repairs(conn: asyncpg.Connection, vins: list[str]) -> dict[Key, datetime]:
    rows = await conn.fetch(
        "SELECT vin, type, component, max(resolved_at) AS at FROM alerts "
        "WHERE resolution = 'work_order' AND vin = ANY($1::text[]) GROUP BY vin, type, component",
        vins,
    )
    return {(r["vin"], r["type"], r["component"]): r["at"] for r in rows}


class AlertStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def apply(
        self,
        source: Source,
        findings: Sequence[Finding],
        clearances: Sequence[Clearance] = (),
        *,
        now: datetime,
    ) -> AppliedChanges:
        """Apply one engine's findings and clearances in one transaction."""
        if not findings and not clearances:
            return AppliedChanges()
        vins = sorted({f.vin for f in findings} | {c.vin for c in clearances})
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock_vehicles(conn, vins)
            active = await _active(conn, vins)
            repairs = await _repairs(conn, vins)
            changes = AppliedChanges()
            for finding in findings:
                key = (finding.vin, finding.type.value, finding.component)
                current = active.get(key)
                decision = decide_finding(
                    current.active() if current else None,
                    finding,
                    source,
                    repaired_at=repairs.get(key),
                )
                record = await _execute(conn, decision, now=now)
                if record is not None:
                    _account(changes, decision, record)
                    active[key] = record
            for clearance in clearances:
                key = (clearance.vin, clearance.type.value, clearance.component)
                current = active.get(key)
                decision = decide_clearance(
                    current.active() if current else None, clearance, source
                )
                record = await _execute(conn, decision, now=now)
                if record is not None:
                    _account(changes, decision, record)
                    if record.status is Status.RESOLVED:
                        active.pop(key, None)
                    else:
                        active[key] = record
            return changes

    async def active_keys(self, source: Source) -> list[Key]:
        """(vin, type, component) of the active alerts ``source`` asserts."""
        rows = await self._pool.fetch(
            "SELECT vin, type, component FROM alerts "
            "WHERE status <> 'resolved' AND $1 = ANY(sources)",
            source.value,
        )
        return [(r["vin"], r["type"], r["component"]) for r in rows]

    async def acknowledge(self, alert_id: int, *, by: str, now: datetime) -> AlertRecord:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""
                UPDATE alerts SET status = 'acknowledged', acknowledged_at = $2,
                    acknowledged_by = $3, updated_at = $2, revision = revision + 1
                WHERE id = $1 AND status = 'open' {_RETURNING}
                """,
                alert_id,
                now,
                by,
            )
            if row is None:
                current = await get_alert(conn, alert_id)
                if current is None:
                    raise AlertNotFoundError(alert_id)
                if current.status is Status.RESOLVED:
                    raise AlertAlreadyResolvedError(alert_id)
                return current  # already acknowledged: idempotent
            record = AlertRecord.from_row(row)
            await _publish(conn, "alert.acknowledged", record, now)
            return record


async def get_alert(conn: asyncpg.Connection, alert_id: int) -> AlertRecord | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM alerts WHERE id = $1", alert_id)
    return AlertRecord.from_row(row) if row else None


async def resolve_alerts(
    conn: asyncpg.Connection,
    alert_ids: Sequence[int],
    *,
    now: datetime,
    resolution: Resolution,
    work_order_id: int | None = None,
) -> list[AlertRecord]:
    """Resolve the given active alerts in ``conn``'s transaction (a work order closing them,
    or an admin); already resolved ones are left as they are."""
    rows = await conn.fetch(
        f"""
        UPDATE alerts SET status = 'resolved', resolved_at = $2, resolution = $3,
            work_order_id = $4, updated_at = $2, revision = revision + 1
        WHERE id = ANY($1::bigint[]) AND status <> 'resolved' {_RETURNING}
        """,
        list(alert_ids),
        now,
        resolution.value,
        work_order_id,
    )
    records = [AlertRecord.from_row(r) for r in rows]
    for record in records:
        await _publish(conn, "alert.resolved", record, now)
    return records


async def _execute(
    conn: asyncpg.Connection, decision: Decision | None, *, now: datetime
) -> AlertRecord | None:
    match decision:
        case None:
            return None
        case OpenAlert(finding=f, source=source):
            row = await conn.fetchrow(
                f"""
                INSERT INTO alerts (vin, type, component, severity, sources, opened_at,
                    updated_at, detected_at, observed_at, predicted_failure_at, confidence,
                    evidence, recommended_action)
                VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $7, $8, $9, $10::jsonb, $11)
                {_RETURNING}
                """,
                f.vin,
                f.type.value,
                f.component,
                f.severity.value,
                [source.value],
                now,
                f.observed_at,
                f.predicted_failure_at,
                _unit(f.confidence),
                json.dumps(f.evidence),
                f.recommended_action,
            )
            topic = "alert.opened"
        case UpdateAlert() as u:
            row = await conn.fetchrow(
                f"""
                UPDATE alerts SET status = $2, severity = $3, sources = $4, observed_at = $5,
                    predicted_failure_at = $6, confidence = $7, evidence = $8::jsonb,
                    recommended_action = $9, updated_at = $10, revision = revision + 1
                WHERE id = $1 {_RETURNING}
                """,
                u.alert_id,
                u.status.value,
                u.severity.value,
                sorted(s.value for s in u.sources),
                u.observed_at,
                u.predicted_failure_at,
                _unit(u.confidence),
                json.dumps(u.evidence),
                u.recommended_action,
                now,
            )
            record = AlertRecord.from_row(row)
            # Consumers tell the owner only when it got worse (escalated).
            await _publish(conn, "alert.updated", record, now, escalated=u.escalated)
            return record
        case WithdrawSource(alert_id=alert_id, sources=sources):
            row = await conn.fetchrow(
                f"UPDATE alerts SET sources = $2, updated_at = $3 WHERE id = $1 {_RETURNING}",
                alert_id,
                sorted(s.value for s in sources),
                now,
            )
            return AlertRecord.from_row(row)  # no owner-visible change: no event
        case ResolveAlert(alert_id=alert_id, resolution=resolution):
            records = await resolve_alerts(conn, [alert_id], now=now, resolution=resolution)
            return records[0] if records else None
    record = AlertRecord.from_row(row)
    await _publish(conn, topic, record, now)
    return record


def _unit(confidence: float) -> float:
    return min(max(confidence, 0.0), 1.0)


def _account(changes: AppliedChanges, decision: Decision | None, record: AlertRecord) -> None:
    if isinstance(decision, OpenAlert):
        changes.opened.append(record)
    elif isinstance(decision, ResolveAlert):
        changes.resolved.append(record)
    elif isinstance(decision, UpdateAlert):
        changes.updated.append(record)


async def _publish(
    conn: asyncpg.Connection,
    topic: str,
    record: AlertRecord,
    now: datetime,
    **extra: Any,
) -> None:
    payload = record.payload() | extra
    await append(conn, topic, f"alert:{record.id}", payload, occurred_at=now, vin=record.vin)


__all__ = [
    "AlertAlreadyResolvedError",
    "AlertError",
    "AlertNotFoundError",
    "AlertRecord",
    "AlertStore",
    "AppliedChanges",
    "get_alert",
    "resolve_alerts",
]
