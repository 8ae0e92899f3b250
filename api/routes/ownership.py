"""Vehicle ownership (admin): link a vehicle to a customer, transfer it, unlink it, history.

The dealer flow will call the same operation with ``source: dealer`` once dealers have a role
of their own; until then linking is an administrator's act (ADR 0006).
"""

from __future__ import annotations

from fastapi import APIRouter

from api.customer_schemas import OwnerLink, OwnershipHistoryPublic, OwnershipPeriodPublic
from api.customer_views import period_public
from api.deps import Admin, NoStore, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED
from api.routes.vehicles import VinPath
from api.schemas import ErrorBody

router = APIRouter(
    prefix="/v1/vehicles",
    tags=["ownership"],
    responses={401: UNAUTHENTICATED, 403: FORBIDDEN, 422: INVALID_REQUEST},
    dependencies=[NoStore],
)


@router.put(
    "/{vin}/owner",
    response_model=OwnershipPeriodPublic,
    responses={
        404: {
            "model": ErrorBody,
            "description": "Unknown vehicle or customer (vehicle_not_found, customer_not_found)",
        }
    },
    summary="Link a vehicle to a customer, or transfer it to a new owner (admin)",
    description="Closes the current owner's period (if any) and opens the new owner's now. "
    "The new owner sees the vehicle's data only from this moment on. Idempotent for the "
    "current owner.",
)
async def set_owner(state: State, _: Admin, vin: VinPath, body: OwnerLink) -> OwnershipPeriodPublic:
    period = await state.ownership.set_owner(
        vin, body.customer_id, source=body.source, now=state.now()
    )
    return period_public(period)


@router.delete(
    "/{vin}/owner",
    response_model=OwnershipPeriodPublic,
    responses={
        404: {
            "model": ErrorBody,
            "description": "Unknown vehicle, or no owner (vehicle_has_no_owner)",
        }
    },
    summary="Unlink a vehicle from its owner (admin)",
)
async def unlink_owner(state: State, _: Admin, vin: VinPath) -> OwnershipPeriodPublic:
    return period_public(await state.ownership.unlink(vin, now=state.now()))


@router.get(
    "/{vin}/ownership",
    response_model=OwnershipHistoryPublic,
    responses={404: {"model": ErrorBody, "description": "Unknown vehicle"}},
    summary="Every ownership period of a vehicle, oldest first (admin)",
)
async def ownership_history(state: State, _: Admin, vin: VinPath) -> OwnershipHistoryPublic:
    periods = await state.ownership.history(vin)
    return OwnershipHistoryPublic(vin=vin, periods=[period_public(p) for p in periods])
