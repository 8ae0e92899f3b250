"""Work orders: opened by the centre for a checked-in car (recall and warranty checks made
then), parts and labour lines, and closing, which resolves the alerts the work order names and
completes the booking. Centres see the work orders of their centres, admins all; the customer
reads the work order of their booking."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from api.deps import CurrentCustomer, NoStore, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED, NotFoundError
from api.routes.bookings import BookingIdPath, Staff, visible_booking
from api.schemas import ErrorBody
from api.security.principal import Principal
from api.service.errors import WorkOrderNotFoundError
from api.service.records import WorkOrderRecord
from api.service.views import work_order_public
from api.service.work_order_schemas import (
    WorkOrderClose,
    WorkOrderCreate,
    WorkOrderLineCreate,
    WorkOrderPublic,
    WorkOrdersPublic,
)
from api.service.work_orders import (
    LineRequest,
    WorkOrderRequest,
    add_line,
    close_work_order,
    get_work_order,
    open_work_order,
    page_work_orders,
    remove_line,
)
from protocol.vin import VIN_PATTERN

router = APIRouter(
    tags=["work orders"],
    responses={401: UNAUTHENTICATED, 403: FORBIDDEN, 422: INVALID_REQUEST},
    dependencies=[NoStore],
)
WorkOrderIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Work order id")]
LineIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Line id")]
NOT_VISIBLE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown work order, or not at my centres"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "Not in a state that allows it (work_order_conflict, already_exists, "
        "coverage_not_applicable)",
    }
}


def _may_see(principal: Principal, record: WorkOrderRecord) -> bool:
    return principal.is_admin or record.centre_id in principal.centres


async def _visible(state: State, principal: Principal, work_order_id: int) -> WorkOrderRecord:
    async with state.pool.acquire() as conn:
        record = await get_work_order(conn, work_order_id)
    if record is None or not _may_see(principal, record):
        raise WorkOrderNotFoundError(work_order_id)
    return record


@router.post(
    "/v1/service/bookings/{booking_id}/work-order",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkOrderPublic,
    responses={
        404: {"model": ErrorBody, "description": "Unknown booking, or not at my centres"},
        **_CONFLICT,
    },
    summary="Open the work order of a checked-in booking (centre, admin)",
    description="Checks the car against the active recall campaigns of its brand (model, "
    "model year, VIN serial range; remedies already done are skipped) and its brand's "
    "warranty terms (from `first_registered_on`, else 1 January of the model year; mileage "
    "`odometer_km`, else the car's last `Vehicle.TraveledDistance`).",
)
async def create_work_order(
    state: State, principal: Staff, booking_id: BookingIdPath, body: WorkOrderCreate
) -> WorkOrderPublic:
    await visible_booking(state, principal, booking_id)
    request = WorkOrderRequest(
        complaint=body.complaint,
        alert_ids=body.alert_ids,
        odometer_km=body.odometer_km,
        first_registered_on=body.first_registered_on,
    )
    async with state.pool.acquire() as conn, conn.transaction():
        record = await open_work_order(conn, booking_id, request, now=state.now())
    return work_order_public(record)


@router.get(
    "/v1/service/work-orders",
    response_model=WorkOrdersPublic,
    summary="Work orders at my centres (admins: all), newest first",
)
async def list_work_orders(
    state: State,
    principal: Staff,
    paging: Paging,
    status_: Annotated[str | None, Query(alias="status", pattern="^(open|closed)$")] = None,
    vin: Annotated[str | None, Query(pattern=VIN_PATTERN)] = None,
) -> WorkOrdersPublic:
    async with state.pool.acquire() as conn:
        records, count = await page_work_orders(
            conn,
            limit=paging.limit,
            offset=paging.offset,
            centres=None if principal.is_admin else principal.centres,
            status=status_,
            vin=vin,
        )
    return WorkOrdersPublic(data=[work_order_public(r) for r in records], count=count)


@router.get(
    "/v1/service/work-orders/{work_order_id}",
    response_model=WorkOrderPublic,
    responses=NOT_VISIBLE,
    summary="One work order",
)
async def get_one(
    state: State, principal: Staff, work_order_id: WorkOrderIdPath
) -> WorkOrderPublic:
    return work_order_public(await _visible(state, principal, work_order_id))


@router.post(
    "/v1/service/work-orders/{work_order_id}/lines",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkOrderPublic,
    responses={**NOT_VISIBLE, **_CONFLICT},
    summary="Add a part or labour line",
    description="`coverage: warranty` needs the warranty check to have found the car covered; "
    "`coverage: recall` a recall found open on it (`recall_code`).",
)
async def add_work_order_line(
    state: State, principal: Staff, work_order_id: WorkOrderIdPath, body: WorkOrderLineCreate
) -> WorkOrderPublic:
    await _visible(state, principal, work_order_id)
    line = LineRequest(**body.model_dump())
    async with state.pool.acquire() as conn, conn.transaction():
        record = await add_line(conn, work_order_id, line, now=state.now())
    return work_order_public(record)


@router.delete(
    "/v1/service/work-orders/{work_order_id}/lines/{line_id}",
    response_model=WorkOrderPublic,
    responses={**NOT_VISIBLE, **_CONFLICT},
    summary="Remove a line of an open work order",
)
async def remove_work_order_line(
    state: State,
    principal: Staff,
    work_order_id: WorkOrderIdPath,
    line_id: LineIdPath,
) -> WorkOrderPublic:
    await _visible(state, principal, work_order_id)
    async with state.pool.acquire() as conn, conn.transaction():
        record = await remove_line(conn, work_order_id, line_id, now=state.now())
    return work_order_public(record)


@router.post(
    "/v1/service/work-orders/{work_order_id}/close",
    response_model=WorkOrderPublic,
    responses={**NOT_VISIBLE, **_CONFLICT},
    summary="Close the work order: resolve its alerts and complete the booking",
)
async def close(
    state: State,
    principal: Staff,
    work_order_id: WorkOrderIdPath,
    body: WorkOrderClose | None = None,
) -> WorkOrderPublic:
    await _visible(state, principal, work_order_id)
    more = body.alert_ids if body is not None and body.alert_ids else []
    async with state.pool.acquire() as conn, conn.transaction():
        record = await close_work_order(conn, work_order_id, more_alert_ids=more, now=state.now())
    return work_order_public(record)


@router.get(
    "/v1/me/bookings/{booking_id}/work-order",
    response_model=WorkOrderPublic,
    responses={
        404: {"model": ErrorBody, "description": "Unknown booking, not mine, or no work order"}
    },
    summary="The work order of my booking: checks, parts, labour and what I pay",
)
async def my_work_order(
    state: State, me: CurrentCustomer, booking_id: BookingIdPath
) -> WorkOrderPublic:
    booking = await visible_booking(state, Principal.customer(me), booking_id)
    if booking.work_order_id is None:
        raise NotFoundError(f"booking {booking_id} has no work order yet")
    async with state.pool.acquire() as conn:
        record = await get_work_order(conn, booking.work_order_id)
    if record is None:
        raise WorkOrderNotFoundError(booking.work_order_id)
    return work_order_public(record)
