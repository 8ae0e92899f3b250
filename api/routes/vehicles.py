"""Vehicles: the registry listing and each vehicle's latest state.

Object-level authorisation: admins see every vehicle; a customer sees the vehicles they own,
and of each only what was sampled since their ownership began; a service centre sees the
vehicles booked with it (none until bookings exist). A vehicle the caller may not see answers
404 exactly like an unknown one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.customer_views import vehicle_public
from api.customers.garage import clamp_last_seen, visible_state
from api.deps import CurrentPrincipal, Paging, State
from api.errors import (
    FORBIDDEN,
    INVALID_REQUEST,
    UNAUTHENTICATED,
    ForbiddenError,
    NotFoundError,
)
from api.schemas import (
    VIN_DESCRIPTION,
    VIN_EXAMPLE,
    EcuPublic,
    ErrorBody,
    SignalValuePublic,
    VehicleDetailPublic,
    VehiclesPublic,
    VehicleStatePublic,
)
from api.security.access import VehicleWindow
from api.security.principal import Principal
from ingest.queries import latest_state
from protocol.vin import VIN_PATTERN

router = APIRouter(
    prefix="/v1/vehicles",
    tags=["vehicles"],
    responses={401: UNAUTHENTICATED, 422: INVALID_REQUEST},
)

VinPath = Annotated[
    str, Path(pattern=VIN_PATTERN, description=VIN_DESCRIPTION, examples=[VIN_EXAMPLE])
]
NOT_VISIBLE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown vehicle, or not yours"}
}


async def visible_vehicle(state: State, principal: Principal, vin: str) -> VehicleWindow:
    """The caller's window on ``vin``, or 404 (unknown and not-yours look the same)."""
    window = await state.access.vehicle(principal, vin, state.now())
    if window is None:
        raise NotFoundError(f"vehicle {vin} is not registered")
    return window


@router.get(
    "",
    response_model=VehiclesPublic,
    summary="List the vehicles I may see (admins: all registered vehicles)",
)
async def list_vehicles(
    state: State, principal: CurrentPrincipal, paging: Paging
) -> VehiclesPublic:
    windows = await state.access.vehicles(principal, state.now())
    if windows is None:
        records, count = await state.registry.page(limit=paging.limit, offset=paging.offset)
        return VehiclesPublic(data=[vehicle_public(r) for r in records], count=count)
    by_vin = {w.vin: w for w in windows}
    records, count = await state.registry.page(
        limit=paging.limit, offset=paging.offset, vins=list(by_vin)
    )
    return VehiclesPublic(
        data=[vehicle_public(clamp_last_seen(r, by_vin[r.vin])) for r in records], count=count
    )


@router.get(
    "/{vin}",
    response_model=VehicleDetailPublic,
    responses={403: FORBIDDEN, **NOT_VISIBLE},
    summary="One vehicle: registry data, ECUs, connection state and last seen (admin)",
)
async def vehicle_detail(
    state: State, principal: CurrentPrincipal, vin: VinPath
) -> VehicleDetailPublic:
    # Credentials history and connection times are operations data: admins only. Others get
    # 404 for what they may not see, then 403 (their own car exists, the route is not theirs).
    await visible_vehicle(state, principal, vin)
    if not principal.is_admin:
        raise ForbiddenError("vehicle details are for fleet administrators; see /v1/me/vehicles")
    detail = await state.registry.detail(vin)
    if detail is None:
        raise NotFoundError(f"vehicle {vin} is not registered")
    presence = detail.presence
    return VehicleDetailPublic(
        **vehicle_public(detail.record).model_dump(),
        ecus=[
            EcuPublic(
                ecu_id=e.ecu_id, hardware_id=e.hardware_id, software_version=e.software_version
            )
            for e in detail.ecus
        ],
        online=presence.online if presence else None,
        last_connected_at=presence.last_connected_at if presence else None,
        last_disconnected_at=presence.last_disconnected_at if presence else None,
        revoked_at=detail.record.revoked_at,
        credentials_rotated_at=detail.credentials_rotated_at,
    )


@router.get(
    "/{vin}/state",
    response_model=VehicleStatePublic,
    responses=NOT_VISIBLE,
    summary="Latest value and sample time of every signal the vehicle has sent",
    description="For a customer, only values sampled since their ownership began.",
)
async def vehicle_state(
    state: State, principal: CurrentPrincipal, vin: VinPath
) -> VehicleStatePublic:
    window = await visible_vehicle(state, principal, vin)
    async with state.pool.acquire() as conn:
        signals = visible_state(await latest_state(conn, vin), window)
    return VehicleStatePublic(
        vin=vin,
        signals={s.signal: SignalValuePublic(value=s.value, ts=s.ts) for s in signals},
        updated_at=max((s.ts for s in signals), default=None),
    )
