"""The alert lifecycle as a pure decision: given the active alert for a key (if any) and what an
engine now says, what changes. No I/O; ``diagnostics.alert_store`` applies the decisions.

open -> acknowledged -> resolved. One active (open or acknowledged) alert per vehicle, type and
component. An alert remembers which engines assert it (``stream``, ``trend``); a clearance from
one engine withdraws only that engine, and the alert resolves when none is left. Writes happen
only on material changes (severity, a new engine, the predicted failure moving by a day or a
tenth of the time left, confidence by 0.1, a new recommended action), so re-evaluating the same
data, or a prediction that wobbles, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from diagnostics.findings import SEVERITY_RANK, Clearance, Evidence, Finding, Severity

PREDICTION_MOVE = timedelta(days=1)
PREDICTION_MOVE_FRACTION = 0.1
CONFIDENCE_MOVE = 0.1


class Source(StrEnum):
    STREAM = "stream"
    TREND = "trend"


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    EVIDENCE_CLEARED = "evidence_cleared"
    WORK_ORDER = "work_order"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """The fields of an open or acknowledged alert that decisions depend on."""

    id: int
    status: Status
    severity: Severity
    sources: frozenset[Source]
    observed_at: datetime
    predicted_failure_at: datetime | None
    confidence: float
    recommended_action: str


@dataclass(frozen=True, slots=True)
class OpenAlert:
    finding: Finding
    source: Source


@dataclass(frozen=True, slots=True)
class UpdateAlert:
    alert_id: int
    status: Status
    severity: Severity
    sources: frozenset[Source]
    observed_at: datetime
    predicted_failure_at: datetime | None
    confidence: float
    evidence: Evidence
    recommended_action: str
    # Worth telling the owner: the severity rose (an acknowledged alert then reopens).
    escalated: bool


@dataclass(frozen=True, slots=True)
class WithdrawSource:
    """One engine no longer asserts the alert; another still does."""

    alert_id: int
    sources: frozenset[Source]


@dataclass(frozen=True, slots=True)
class ResolveAlert:
    alert_id: int
    resolution: Resolution
    reason: str


Decision = OpenAlert | UpdateAlert | WithdrawSource | ResolveAlert


def decide_finding(
    active: ActiveAlert | None,
    finding: Finding,
    source: Source,
    *,
    repaired_at: datetime | None = None,
) -> Decision | None:
    """``repaired_at``: when a work order last resolved this key. Findings built only from data
    older than the repair describe the part that was replaced: ignored."""
    if repaired_at is not None and finding.observed_at <= repaired_at:
        return None
    if active is None:
        return OpenAlert(finding, source)
    sources = active.sources | {source}
    others_assert = bool(active.sources - {source})
    severity = finding.severity
    if others_assert and SEVERITY_RANK[active.severity] > SEVERITY_RANK[severity]:
        severity = active.severity  # another engine still sees it worse: no downgrade
    escalated = SEVERITY_RANK[severity] > SEVERITY_RANK[active.severity]
    changed = (
        escalated
        or severity != active.severity
        or sources != active.sources
        or _prediction_moved(active.predicted_failure_at, finding.predicted_failure_at, finding)
        or abs(finding.confidence - active.confidence) >= CONFIDENCE_MOVE
        or finding.recommended_action != active.recommended_action
    )
    if not changed:
        return None
    status = Status.OPEN if escalated else active.status
    return UpdateAlert(
        alert_id=active.id,
        status=status,
        severity=severity,
        sources=sources,
        observed_at=max(active.observed_at, finding.observed_at),
        predicted_failure_at=finding.predicted_failure_at,
        confidence=finding.confidence,
        evidence=finding.evidence,
        recommended_action=finding.recommended_action,
        escalated=escalated,
    )


def _prediction_moved(before: datetime | None, after: datetime | None, finding: Finding) -> bool:
    if before is None or after is None:
        return before is not after
    left = max(after - finding.observed_at, timedelta(0))
    return abs(after - before) >= max(PREDICTION_MOVE, left * PREDICTION_MOVE_FRACTION)


def decide_clearance(
    active: ActiveAlert | None, clearance: Clearance, source: Source
) -> Decision | None:
    if active is None or source not in active.sources:
        return None
    if clearance.observed_at < active.observed_at:
        return None  # older data than what raised it (a late resend): not evidence of health
    remaining = active.sources - {source}
    if remaining:
        return WithdrawSource(active.id, remaining)
    return ResolveAlert(active.id, Resolution.EVIDENCE_CLEARED, clearance.reason)
