"""Templates for the alert events of ``diagnostics.alert_store``: ``alert.opened``,
``alert.updated`` (only when the severity rose) and ``alert.resolved``.

A critical alert is service-critical (quiet hours do not hold it back); everything else is
informational. ``recommended_action`` is English free text from the diagnostic engines, so it is
used for English only; other languages get the advice for the severity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from api.notifications.model import Category
from api.notifications.templates import (
    Draft,
    RenderContext,
    TemplateRegistry,
    default_dedupe_key,
    parse_payload,
)
from api.notifications.texts import alert_name, format_when, text
from diagnostics.outbox import OutboxEvent

SeverityName = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
_ALERT_TOPICS = ("alert.opened", "alert.updated")


class AlertPayload(BaseModel):
    """The alert's public JSON (``AlertRecord.payload``); fields not needed here are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: int
    vin: str
    type: str
    component: str = ""
    status: str
    severity: SeverityName
    resolution: str | None = None
    work_order_id: int | None = None
    predicted_failure_at: datetime | None = None
    recommended_action: str = ""
    # alert.updated: whether the severity rose (set by the alert store).
    escalated: bool | None = None


def _category(alert: AlertPayload) -> Category:
    return Category.SERVICE_CRITICAL if alert.severity == "critical" else Category.INFORMATIONAL


def _advice(alert: AlertPayload, context: RenderContext) -> str:
    lang = context.language
    advice = (
        alert.recommended_action.strip()
        if lang == "en" and alert.recommended_action.strip()
        else text(f"alert.advice.{alert.severity}", lang)
    )
    if alert.predicted_failure_at is not None:
        when = format_when(alert.predicted_failure_at, context.timezone, lang)
        advice = f"{advice} {text('alert.prediction', lang, when=when)}"
    return advice


def _data(alert: AlertPayload) -> dict[str, object]:
    return {
        "alert_id": alert.id,
        "severity": alert.severity,
        "type": alert.type,
        "component": alert.component,
    }


def _told_severity(context: RenderContext) -> int | None:
    """The highest severity this customer was told about for the alert, if any."""
    ranks = [
        SEVERITY_RANK[str(t.data.get("severity"))]
        for t in context.told
        if t.topic in _ALERT_TOPICS and t.data.get("severity") in SEVERITY_RANK
    ]
    return max(ranks) if ranks else None


class AlertOpened:
    def render(self, event: OutboxEvent, context: RenderContext) -> Draft:
        alert = parse_payload(AlertPayload, event)
        what = alert_name(alert.type, alert.component, context.language)
        key = (
            "alert.opened.title.critical" if alert.severity == "critical" else "alert.opened.title"
        )
        return Draft(
            category=_category(alert),
            title=text(key, context.language, what=what),
            body=_advice(alert, context),
            data=_data(alert),
            dedupe_key=default_dedupe_key(event),
        )


class AlertUpdated:
    """Only an escalation is news: the severity is higher than anything the customer was told
    about this alert. A producer's ``escalated: false`` settles it; without the flag (or with
    it, against a duplicate event) the customer's earlier notifications decide."""

    def render(self, event: OutboxEvent, context: RenderContext) -> Draft | None:
        alert = parse_payload(AlertPayload, event)
        if alert.escalated is False:
            return None
        told = _told_severity(context)
        if told is not None and SEVERITY_RANK[alert.severity] <= told:
            return None
        what = alert_name(alert.type, alert.component, context.language)
        return Draft(
            category=_category(alert),
            title=text("alert.updated.title", context.language, what=what),
            body=_advice(alert, context),
            data=_data(alert),
            # One escalation notice per alert and severity reached.
            dedupe_key=f"{default_dedupe_key(event)}|{alert.severity}",
        )


class AlertResolved:
    """Good news is informational, and told only to a customer who heard of the alert (an
    alert of the previous owner's time resolving means nothing to the new one)."""

    def render(self, event: OutboxEvent, context: RenderContext) -> Draft | None:
        alert = parse_payload(AlertPayload, event)
        if _told_severity(context) is None:
            return None
        resolution = alert.resolution if alert.resolution in _RESOLUTIONS else "manual"
        return Draft(
            category=Category.INFORMATIONAL,
            title=text(
                "alert.resolved.title",
                context.language,
                what=alert_name(alert.type, alert.component, context.language),
            ),
            body=text(f"alert.resolution.{resolution}", context.language),
            data={**_data(alert), "resolution": resolution, "work_order_id": alert.work_order_id},
            dedupe_key=default_dedupe_key(event),
        )


_RESOLUTIONS = frozenset({"evidence_cleared", "work_order", "manual"})


def register_alert_templates(registry: TemplateRegistry) -> None:
    registry.register("alert.opened", AlertOpened())
    registry.register("alert.updated", AlertUpdated())
    registry.register("alert.resolved", AlertResolved())
