"""The alert lifecycle's decisions, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from diagnostics.findings import AlertType, Clearance, Finding, Severity
from diagnostics.lifecycle import (
    ActiveAlert,
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

T0 = datetime(2026, 11, 1, tzinfo=UTC)
VIN = "WVWZZZ1JZXW000001"


def finding(
    severity: Severity = Severity.WARNING,
    *,
    at: datetime = T0,
    predicted: datetime | None = T0 + timedelta(days=20),
    confidence: float = 0.8,
    action: str = "Have the tyre checked.",
) -> Finding:
    return Finding(
        VIN,
        AlertType.TIRE_SLOW_LEAK,
        "Row1.Left",
        severity,
        at,
        action,
        confidence=confidence,
        predicted_failure_at=predicted,
        evidence={"slope_kpa_per_day": -3.0},
    )


def active(
    severity: Severity = Severity.WARNING,
    *,
    status: Status = Status.OPEN,
    sources: frozenset[Source] = frozenset({Source.TREND}),
    predicted: datetime | None = T0 + timedelta(days=20),
) -> ActiveAlert:
    return ActiveAlert(7, status, severity, sources, T0, predicted, 0.8, "Have the tyre checked.")


def clearance(at: datetime = T0 + timedelta(days=1)) -> Clearance:
    return Clearance(VIN, AlertType.TIRE_SLOW_LEAK, "Row1.Left", at, "pressure restored")


def test_a_first_finding_opens_an_alert() -> None:
    assert decide_finding(None, finding(), Source.TREND) == OpenAlert(finding(), Source.TREND)


def test_the_same_finding_again_changes_nothing() -> None:
    assert decide_finding(active(), finding(), Source.TREND) is None


def test_a_small_wobble_of_the_prediction_changes_nothing() -> None:
    wobble = finding(predicted=T0 + timedelta(days=20, hours=20))
    assert decide_finding(active(), wobble, Source.TREND) is None


def test_a_prediction_moving_by_days_updates() -> None:
    moved = finding(predicted=T0 + timedelta(days=12))
    decision = decide_finding(active(), moved, Source.TREND)
    assert isinstance(decision, UpdateAlert)
    assert decision.predicted_failure_at == T0 + timedelta(days=12)
    assert not decision.escalated


def test_escalation_reopens_an_acknowledged_alert() -> None:
    decision = decide_finding(
        active(status=Status.ACKNOWLEDGED), finding(Severity.CRITICAL), Source.STREAM
    )
    assert isinstance(decision, UpdateAlert)
    assert decision.escalated
    assert decision.status is Status.OPEN
    assert decision.sources == {Source.TREND, Source.STREAM}


def test_a_downgrade_by_one_engine_does_not_hide_anothers_worse_view() -> None:
    both = active(Severity.CRITICAL, sources=frozenset({Source.STREAM, Source.TREND}))
    assert decide_finding(both, finding(Severity.WARNING), Source.TREND) is None


def test_the_only_engine_may_downgrade() -> None:
    decision = decide_finding(active(Severity.CRITICAL), finding(Severity.WARNING), Source.TREND)
    assert isinstance(decision, UpdateAlert)
    assert decision.severity is Severity.WARNING
    assert decision.status is Status.OPEN


def test_findings_from_before_a_repair_are_ignored() -> None:
    repaired = T0 + timedelta(hours=1)
    assert decide_finding(None, finding(), Source.TREND, repaired_at=repaired) is None
    later = finding(at=T0 + timedelta(days=2))
    assert isinstance(decide_finding(None, later, Source.TREND, repaired_at=repaired), OpenAlert)


def test_a_clearance_resolves_when_no_other_engine_asserts() -> None:
    assert decide_clearance(active(), clearance(), Source.TREND) == ResolveAlert(
        7, Resolution.EVIDENCE_CLEARED, "pressure restored"
    )


def test_a_clearance_withdraws_only_its_engine() -> None:
    both = active(sources=frozenset({Source.STREAM, Source.TREND}))
    assert decide_clearance(both, clearance(), Source.STREAM) == WithdrawSource(
        7, frozenset({Source.TREND})
    )


def test_clearances_that_cannot_apply_do_nothing() -> None:
    assert decide_clearance(None, clearance(), Source.TREND) is None
    assert decide_clearance(active(), clearance(), Source.STREAM) is None  # not its alert
    late_resend = clearance(at=T0 - timedelta(hours=1))
    assert decide_clearance(active(), late_resend, Source.TREND) is None
