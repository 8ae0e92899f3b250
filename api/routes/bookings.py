"""Service bookings: the customer's (``/v1/me/bookings``) and the service side's
(``/v1/service/bookings``, service centres and admins).

Customers book their own cars and confirm or cancel their own bookings. A service centre sees
the bookings at its centres (a van's bookings are its home centre's), checks cars in, completes
visits and records no-shows, and may book a follow-up for a car it currently sees. Admins may
do everything. A booking the caller may not see answers 404; a step their role may not take
403 (``transition_forbidden``); a step the booking's status does not allow 409
(``invalid_transition``).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, status

from api.deps import CurrentCustomer, CurrentPrincipal, NoStore, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED, ForbiddenError, NotFoundError
from api.schemas import ErrorBody
from api.security.access import VehicleWindow
from api.security.principal import Principal, Role
from api.service.bookings import BookingStore, NewBooking, page_bookings
from api.service.centres import get_van
from api.service.errors import BookingNotFoundError
from api.service.lifecycle import Actor, BookingAction
from api.service.records import BookingRecord
from api.service.schemas import (
    BookingCreate,
    BookingPublic,
    BookingsPublic,
    BookingStatusName,
    Instant,
)
from api.service.vehicle_facts import VehicleFacts, current_owner, last_position, vehicle_facts
from api.service.views import booking_public
from api.service.visibility import may_see_booking
from protocol.vin import VIN_PATTERN

router = APIRouter(
    tags=["bookings"],
    responses={401: UNAUTHENTICATED, 403: FORBIDDEN, 422: INVALID_REQUEST},
    dependencies=[NoStore],  # names, places and times of a person's appointments
)
BookingIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Booking id")]
StatusQuery = Annotated[
    BookingStatusName | None, Query(alias="status", description="Only this status")
]
NOT_VISIBLE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown booking, or not yours (booking_not_found)"}
}
_CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown vehicle (or not yours), centre or van"},
    409: {
        "model": ErrorBody,
        "description": "slot_full, vehicle_already_booked, alert_already_booked, position_unknown",
    },
}
_TRANSITION_ERRORS: dict[int | str, dict[str, Any]] = {
    **NOT_VISIBLE,
    409: {"model": ErrorBody, "description": "Not from the booking's status (invalid_transition)"},
}
ACTORS = {
    Role.CUSTOMER: Actor.CUSTOMER,
    Role.SERVICE_CENTER: Actor.SERVICE_CENTER,
    Role.FLEET_ADMIN: Actor.FLEET_ADMIN,
}


def require_staff(principal: CurrentPrincipal) -> Principal:
    """Service centres and admins; customers use ``/v1/me/bookings``."""
    if principal.role is Role.CUSTOMER:
        raise ForbiddenError("this route is for service centres and admins; see /v1/me/bookings")
    return principal


Staff = Annotated[Principal, Depends(require_staff)]


async def visible_booking(state: State, principal: Principal, booking_id: int) -> BookingRecord:
    """The booking, or 404 when it does not exist or the caller may not see it."""
    record = await BookingStore(state.pool).get(booking_id)
    if record is None or not may_see_booking(principal, record):
        raise BookingNotFoundError(booking_id)
    return record


async def _vehicle(
    state: State, principal: Principal, vin: str
) -> tuple[VehicleWindow, VehicleFacts]:
    window = await state.access.vehicle(principal, vin, state.now())
    async with state.pool.acquire() as conn:
        facts = await vehicle_facts(conn, vin) if window is not None else None
    if window is None or facts is None:
        raise NotFoundError(f"vehicle {vin} is not registered")
    return window, facts


async def _book(
    state: State,
    principal: Principal,
    body: BookingCreate,
    *,
    customer_id: UUID | None,
    source: str,
    window: VehicleWindow,
    facts: VehicleFacts,
) -> BookingPublic:
    location = (body.location.lat, body.location.lon) if body.location else None
    if body.van_id is not None and location is None:
        async with state.pool.acquire() as conn:
            known = await last_position(conn, body.vin, window)
        location = (known.lat, known.lon) if known else None
    new = NewBooking(
        vin=body.vin,
        customer_id=customer_id,
        centre_id=body.centre_id,
        van_id=body.van_id,
        slot_start=body.slot_start,
        source=source,
        required_skills=tuple(body.required_skills),
        alert_id=body.alert_id,
        notes=body.notes,
        location=location,
    )
    record = await BookingStore(state.pool).create(new, facts, now=state.now())
    return booking_public(record)


async def _step(
    state: State, principal: Principal, booking_id: int, action: BookingAction
) -> BookingPublic:
    await visible_booking(state, principal, booking_id)
    record = await BookingStore(state.pool).transition(
        booking_id, action, ACTORS[principal.role], now=state.now()
    )
    return booking_public(record)


# -- the customer ---------------------------------------------------------------------------------


@router.get(
    "/v1/me/bookings", response_model=BookingsPublic, summary="My bookings, newest slot first"
)
async def my_bookings(
    state: State, me: CurrentCustomer, paging: Paging, status_: StatusQuery = None
) -> BookingsPublic:
    async with state.pool.acquire() as conn:
        records, count = await page_bookings(
            conn, limit=paging.limit, offset=paging.offset, customer_id=me, status=status_
        )
    return BookingsPublic(data=[booking_public(r) for r in records], count=count)


@router.post(
    "/v1/me/bookings",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingPublic,
    responses=_CREATE_ERRORS,
    summary="Book a service visit for my car",
    description="At a workshop (`centre_id`) or by a mobile van (`van_id`, electric cars, "
    "within the van's range of `location` or the car's last known position). The booking is "
    "`requested`; confirm it with `POST /v1/me/bookings/{id}/confirm`.",
)
async def create_my_booking(
    state: State, me: CurrentCustomer, body: BookingCreate
) -> BookingPublic:
    principal = Principal.customer(me)
    window, facts = await _vehicle(state, principal, body.vin)
    return await _book(
        state, principal, body, customer_id=me, source="customer", window=window, facts=facts
    )


@router.get(
    "/v1/me/bookings/{booking_id}",
    response_model=BookingPublic,
    responses=NOT_VISIBLE,
    summary="One of my bookings",
)
async def my_booking(state: State, me: CurrentCustomer, booking_id: BookingIdPath) -> BookingPublic:
    return booking_public(await visible_booking(state, Principal.customer(me), booking_id))


@router.post(
    "/v1/me/bookings/{booking_id}/confirm",
    response_model=BookingPublic,
    responses=_TRANSITION_ERRORS,
    summary="Confirm my booking (a suggestion, or one I requested)",
)
async def confirm_my_booking(
    state: State, me: CurrentCustomer, booking_id: BookingIdPath
) -> BookingPublic:
    principal = Principal.customer(me)
    record = await visible_booking(state, principal, booking_id)
    # A car sold since: its new owner decides about it now.
    if await state.access.vehicle(principal, record.vin, state.now()) is None:
        raise BookingNotFoundError(booking_id)
    return await _step(state, principal, booking_id, BookingAction.CONFIRM)


@router.post(
    "/v1/me/bookings/{booking_id}/cancel",
    response_model=BookingPublic,
    responses=_TRANSITION_ERRORS,
    summary="Cancel my booking (before its slot starts)",
)
async def cancel_my_booking(
    state: State, me: CurrentCustomer, booking_id: BookingIdPath
) -> BookingPublic:
    return await _step(state, Principal.customer(me), booking_id, BookingAction.CANCEL)


# -- service centres and admins -------------------------------------------------------------------


@router.get(
    "/v1/service/bookings",
    response_model=BookingsPublic,
    summary="Bookings at my centres (admins: all), newest slot first",
)
async def service_bookings(
    *,
    state: State,
    principal: Staff,
    paging: Paging,
    status_: StatusQuery = None,
    vin: Annotated[str | None, Query(pattern=VIN_PATTERN)] = None,
    centre_id: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")] = None,
    start: Annotated[Instant | None, Query(alias="from", description="Slot from")] = None,
    end: Annotated[Instant | None, Query(alias="to", description="Slot before")] = None,
) -> BookingsPublic:
    centres: set[str] | None = None if principal.is_admin else set(principal.centres)
    if centre_id is not None:
        centres = {centre_id} if centres is None else centres & {centre_id}
    async with state.pool.acquire() as conn:
        records, count = await page_bookings(
            conn,
            limit=paging.limit,
            offset=paging.offset,
            centres=centres,
            status=status_,
            vin=vin,
            since=start,
            until=end,
        )
    return BookingsPublic(data=[booking_public(r) for r in records], count=count)


@router.post(
    "/v1/service/bookings",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingPublic,
    responses=_CREATE_ERRORS,
    summary="Book a visit for a car (admins: any car; a centre: a follow-up at its own centre "
    "for a car it currently sees)",
    description="The booking goes to the car's current owner to confirm.",
)
async def create_service_booking(
    state: State, principal: Staff, body: BookingCreate
) -> BookingPublic:
    window, facts = await _vehicle(state, principal, body.vin)
    async with state.pool.acquire() as conn:
        owner = await current_owner(conn, body.vin)
        if not principal.is_admin:
            van = await get_van(conn, body.van_id) if body.van_id else None
            centre = van.home_centre_id if van else body.centre_id
            if centre not in principal.centres:
                raise ForbiddenError("a service centre books only at its own centres")
    return await _book(
        state,
        principal,
        body,
        customer_id=owner.customer_id if owner else None,
        source="admin" if principal.is_admin else "service_center",
        window=window,
        facts=facts,
    )


@router.get(
    "/v1/service/bookings/{booking_id}",
    response_model=BookingPublic,
    responses=NOT_VISIBLE,
    summary="One booking at my centres (admins: any)",
)
async def service_booking(
    state: State, principal: Staff, booking_id: BookingIdPath
) -> BookingPublic:
    return booking_public(await visible_booking(state, principal, booking_id))


def _transition_route(action: BookingAction, path: str, summary: str) -> None:
    async def step(state: State, principal: Staff, booking_id: BookingIdPath) -> BookingPublic:
        return await _step(state, principal, booking_id, action)

    step.__name__ = f"service_booking_{action.value}"
    router.post(
        f"/v1/service/bookings/{{booking_id}}/{path}",
        response_model=BookingPublic,
        responses=_TRANSITION_ERRORS,
        summary=summary,
    )(step)


_transition_route(BookingAction.CONFIRM, "confirm", "Confirm a booking (admin)")
_transition_route(BookingAction.CHECK_IN, "check-in", "Check the car in (centre, admin)")
_transition_route(
    BookingAction.COMPLETE,
    "complete",
    "Complete a visit without a work order (centre, admin); with one, close the work order",
)
_transition_route(BookingAction.CANCEL, "cancel", "Cancel a booking (admin)")
_transition_route(
    BookingAction.NO_SHOW, "no-show", "Record that the car did not come (centre, admin)"
)
