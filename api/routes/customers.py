"""Customers (admin) and each customer's 720-degree overview.

The collection is for fleet administrators. A single customer and their overview are visible to
admins and to that customer; anyone else gets 404, as for an unknown id.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, status

from api.customer_schemas import CustomerCreate, CustomerPublic, CustomersPublic, OverviewPublic
from api.customer_views import customer_public, overview
from api.customers.errors import CustomerNotFoundError
from api.deps import Admin, CurrentPrincipal, NoStore, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED
from api.schemas import ErrorBody
from api.security.principal import Principal

router = APIRouter(
    prefix="/v1/customers",
    tags=["customers"],
    responses={401: UNAUTHENTICATED, 422: INVALID_REQUEST},
    dependencies=[NoStore],
)
CustomerIdPath = Annotated[UUID, Path(description="Customer id (UUID)")]
_NOT_VISIBLE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown customer, or not visible"}
}


def _visible(state: State, principal: Principal, customer_id: UUID) -> None:
    if not state.access.may_see_customer(principal, customer_id):
        raise CustomerNotFoundError(customer_id)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerPublic,
    responses={
        403: FORBIDDEN,
        409: {"model": ErrorBody, "description": "E-mail already used (code email_taken)"},
    },
    summary="Create a customer (admin)",
    description="With `password`, the customer can sign in with the password grant at once.",
)
async def create_customer(state: State, _: Admin, body: CustomerCreate) -> CustomerPublic:
    profile = body.model_dump(exclude={"password", "quiet_hours"})
    if body.quiet_hours is not None:
        profile["quiet_hours_start"] = body.quiet_hours.start
        profile["quiet_hours_end"] = body.quiet_hours.end
    password_hash = await state.passwords.hash(body.password) if body.password else None
    record = await state.customers.create(profile, password_hash=password_hash, now=state.now())
    return customer_public(record)


@router.get(
    "",
    response_model=CustomersPublic,
    responses={403: FORBIDDEN},
    summary="List customers (admin), oldest first",
)
async def list_customers(state: State, _: Admin, paging: Paging) -> CustomersPublic:
    records, count = await state.customers.page(limit=paging.limit, offset=paging.offset)
    return CustomersPublic(data=[customer_public(r) for r in records], count=count)


@router.get(
    "/{customer_id}",
    response_model=CustomerPublic,
    responses=_NOT_VISIBLE,
    summary="One customer's profile (admin, or that customer)",
)
async def get_customer(
    state: State, principal: CurrentPrincipal, customer_id: CustomerIdPath
) -> CustomerPublic:
    _visible(state, principal, customer_id)
    return customer_public(await state.customers.require(customer_id))


@router.get(
    "/{customer_id}/overview",
    response_model=OverviewPublic,
    responses=_NOT_VISIBLE,
    summary="One customer's 720-degree view (admin, or that customer)",
    description="Profile, consents, vehicles with latest state, entitlements; alerts, OTA "
    "status, bookings, offers and notifications as their issues land (empty lists until then).",
)
async def customer_overview(
    state: State, principal: CurrentPrincipal, customer_id: CustomerIdPath
) -> OverviewPublic:
    _visible(state, principal, customer_id)
    return await overview(state.pool, customer_id, state.now())
