"""``GET /v1/me/vehicles/{vin}/telemetry``: a customer's history of their own vehicle, never
reaching back before their ownership began.

One implementation of history: this route narrows the time range to the customer's window and
hands over to ``api.routes.telemetry``. Bucketed queries start at the first whole bucket inside
the window, because a bucket that straddles the ownership start would average in samples of
the previous owner.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter

from api.deps import CurrentCustomer, NoStore, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED, NotFoundError
from api.routes.telemetry import (
    DEFAULT_WINDOW,
    HistoryParameters,
    parse_signals,
    parse_time,
    telemetry_history,
)
from api.routes.vehicles import VinPath
from api.schemas import ErrorBody, SeriesPublic, TelemetryHistoryPublic
from api.security.principal import Principal
from ingest.history import align_up

router = APIRouter(prefix="/v1/me/vehicles", tags=["me"], dependencies=[NoStore])


@router.get(
    "/{vin}/telemetry",
    response_model=TelemetryHistoryPublic,
    responses={
        401: UNAUTHENTICATED,
        403: FORBIDDEN,
        404: {"model": ErrorBody, "description": "Not one of my vehicles"},
        422: INVALID_REQUEST,
    },
    summary="History of my vehicle's signals, from my ownership start on",
    description="As `GET /v1/vehicles/{vin}/telemetry`, with the range cut to the time I "
    "have owned the vehicle: a new owner sees nothing recorded before.",
)
async def my_telemetry(
    *, state: State, me: CurrentCustomer, vin: VinPath, query: HistoryParameters
) -> TelemetryHistoryPublic:
    principal = Principal.customer(me)
    window = await state.access.vehicle(principal, vin, state.now())
    if window is None:
        raise NotFoundError(f"vehicle {vin} is not one of yours")
    end_at = parse_time("end", query.end, state.now())
    start_at = parse_time("start", query.start, end_at - DEFAULT_WINDOW)
    since = window.since
    if since is not None:
        if query.bucket is not None:
            since = align_up(since, query.bucket.width)
        if end_at <= since and start_at < end_at:
            names = parse_signals(query.signals)
            # Nothing of the range is theirs: an empty answer over an empty range.
            return TelemetryHistoryPublic(
                vin=vin,
                start=end_at,
                end=end_at,
                bucket=query.bucket.value if query.bucket else None,
                series=[SeriesPublic(signal=n, points=[]) for n in names],
                truncated=False,
            )
        start_at = max(start_at, since)
    narrowed = replace(query, start=start_at.isoformat(), end=end_at.isoformat())
    return await telemetry_history(state=state, _=principal, vin=vin, query=narrowed)
