"""``GET /v1/vehicles/{vin}/events``: what a vehicle reported as discrete events (DTCs set and
cleared, trips, charging, crash), newest first. A customer sees only events since their
ownership began, as for every other vehicle datum."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import CurrentPrincipal, Paging, State
from api.errors import INVALID_REQUEST, UNAUTHENTICATED
from api.routes.vehicles import NOT_VISIBLE, VinPath, visible_vehicle
from api.schemas import ApiModel
from ingest.queries import vehicle_events

router = APIRouter(
    prefix="/v1/vehicles",
    tags=["vehicles"],
    responses={401: UNAUTHENTICATED, 422: INVALID_REQUEST},
)


class EventPublic(ApiModel):
    seq: int
    ts: datetime = Field(description="When the event happened, per the vehicle (UTC)")
    type: str = Field(examples=["dtc"])
    code: str | None = Field(default=None, examples=["P0217"])
    active: bool | None = Field(default=None, description="For a DTC: set (true) or cleared")
    details: dict[str, Any] = Field(description="Fields beyond the contract's, as sent")


class EventsPublic(ApiModel):
    data: list[EventPublic]
    count: int = Field(description="Events matching, regardless of paging")


_CONTRACT_FIELDS = frozenset({"seq", "ts", "type", "code", "active"})


@router.get(
    "/{vin}/events",
    response_model=EventsPublic,
    responses=NOT_VISIBLE,
    summary="The vehicle's events (DTCs, trips, charging), newest first",
)
async def list_events(
    state: State,
    principal: CurrentPrincipal,
    vin: VinPath,
    paging: Paging,
    event_type: Annotated[
        str | None, Query(alias="type", max_length=64, description="e.g. dtc")
    ] = None,
) -> EventsPublic:
    window = await visible_vehicle(state, principal, vin)
    async with state.pool.acquire() as conn:
        events, total = await vehicle_events(
            conn,
            vin,
            since=window.since,
            until=window.until,
            event_type=event_type,
            limit=paging.limit,
            offset=paging.offset,
        )
    return EventsPublic(
        data=[
            EventPublic(
                seq=e.seq,
                ts=e.ts,
                type=e.type,
                code=e.code,
                active=e.active,
                details={k: v for k, v in json.loads(e.body).items() if k not in _CONTRACT_FIELDS},
            )
            for e in events
        ],
        count=total,
    )
