"""Alerts: ``GET /v1/vehicles/{vin}/alerts``, ``GET /v1/alerts``, ``POST /v1/alerts/{id}/ack``.

Predictive-maintenance and condition alerts raised by diagnostics, with the predicted failure
time, confidence and the evidence behind them. Everyone sees the alerts of the vehicles they may
see (a customer: detected since their ownership began; a service centre: vehicles booked
there); others' alerts answer 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from api.deps import CurrentPrincipal, Paging, State
from api.errors import INVALID_REQUEST, UNAUTHENTICATED, ApiError, NotFoundError
from api.routes.vehicles import NOT_VISIBLE, VinPath, visible_vehicle
from api.schemas import ApiModel, ErrorBody
from diagnostics.alert_queries import AlertFilter, list_alerts
from diagnostics.alert_store import AlertAlreadyResolvedError, AlertRecord, get_alert
from diagnostics.findings import AlertType, Severity

router = APIRouter(tags=["alerts"], responses={401: UNAUTHENTICATED, 422: INVALID_REQUEST})

AlertStatus = Literal["open", "acknowledged", "resolved"]


class AlertPublic(ApiModel):
    id: int
    vin: str
    type: str = Field(examples=["tire_slow_leak"])
    component: str = Field(
        description="The wheel (`Row1.Left`) for tyre and brake alerts, the code for `dtc`",
        examples=["Row1.Left"],
    )
    status: AlertStatus
    severity: Literal["info", "warning", "critical"]
    opened_at: datetime
    updated_at: datetime
    detected_at: datetime = Field(description="Sample time of the data that raised it")
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolution: Literal["evidence_cleared", "work_order", "manual"] | None
    work_order_id: int | None
    predicted_failure_at: datetime | None = Field(
        description="When the trend reaches the failure threshold (null: no prediction)"
    )
    confidence: float = Field(ge=0, le=1)
    evidence: dict[str, Any] = Field(description="The numbers behind the alert")
    recommended_action: str


class AlertsPublic(ApiModel):
    data: list[AlertPublic]
    count: int = Field(description="Alerts matching, regardless of paging")


def alert_public(record: AlertRecord) -> AlertPublic:
    return AlertPublic.model_validate(record.payload())


_NO_ALERT: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown alert, or not yours"}
}


class AlertResolvedError(ApiError):
    status_code = 409
    code = AlertAlreadyResolvedError.code


def alert_filter(
    status: Annotated[
        AlertStatus | None, Query(description="open, acknowledged or resolved")
    ] = None,
    alert_type: Annotated[AlertType | None, Query(alias="type", description="Alert type")] = None,
    severity: Annotated[Severity | None, Query(description="info, warning or critical")] = None,
) -> AlertFilter:
    return AlertFilter(status, alert_type, severity)


Filter = Annotated[AlertFilter, Depends(alert_filter)]


@router.get(
    "/v1/vehicles/{vin}/alerts",
    response_model=AlertsPublic,
    responses=NOT_VISIBLE,
    summary="The vehicle's alerts, newest first",
)
async def vehicle_alerts(
    state: State,
    principal: CurrentPrincipal,
    vin: VinPath,
    paging: Paging,
    where: Filter,
) -> AlertsPublic:
    window = await visible_vehicle(state, principal, vin)
    async with state.pool.acquire() as conn:
        records, total = await list_alerts(
            conn,
            windows=[(vin, window.since, window.until)],
            where=where,
            limit=paging.limit,
            offset=paging.offset,
        )
    return AlertsPublic(data=[alert_public(r) for r in records], count=total)


@router.get(
    "/v1/alerts",
    response_model=AlertsPublic,
    summary="Alerts of every vehicle the caller may see, newest first",
)
async def all_alerts(
    state: State,
    principal: CurrentPrincipal,
    paging: Paging,
    where: Filter,
) -> AlertsPublic:
    visible = await state.access.vehicles(principal, state.now())
    windows = None if visible is None else [(w.vin, w.since, w.until) for w in visible]
    async with state.pool.acquire() as conn:
        records, total = await list_alerts(
            conn,
            windows=windows,
            where=where,
            limit=paging.limit,
            offset=paging.offset,
        )
    return AlertsPublic(data=[alert_public(r) for r in records], count=total)


@router.post(
    "/v1/alerts/{alert_id}/ack",
    response_model=AlertPublic,
    responses={**_NO_ALERT, 409: {"model": ErrorBody, "description": "Already resolved"}},
    summary="Acknowledge an alert (it stays active until resolved)",
)
async def acknowledge_alert(
    state: State,
    principal: CurrentPrincipal,
    alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> AlertPublic:
    async with state.pool.acquire() as conn:
        alert = await get_alert(conn, alert_id)
    window = await state.access.vehicle(principal, alert.vin, state.now()) if alert else None
    if alert is None or window is None or not window.admits(alert.detected_at):
        raise NotFoundError(f"alert {alert_id} does not exist")
    try:
        record = await state.alerts.acknowledge(alert_id, by=principal.subject, now=state.now())
    except AlertAlreadyResolvedError as exc:
        raise AlertResolvedError(str(exc)) from exc
    return alert_public(record)
