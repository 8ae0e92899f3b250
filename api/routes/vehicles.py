"""Vehicles: the registry listing and each vehicle's latest state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Admin, State
from api.errors import INVALID_REQUEST, NotFoundError
from api.schemas import (
    VIN_DESCRIPTION,
    VIN_EXAMPLE,
    EcuPublic,
    ErrorBody,
    SignalValuePublic,
    VehicleDetailPublic,
    VehiclePublic,
    VehiclesPublic,
    VehicleStatePublic,
)
from api.settings import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT
from api.vehicle_registry import VehicleRecord
from ingest.queries import latest_state
from protocol.vin import VIN_PATTERN

router = APIRouter(
    prefix="/v1/vehicles",
    tags=["vehicles"],
    responses={
        401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
        422: INVALID_REQUEST,
    },
)

VinPath = Annotated[
    str, Path(pattern=VIN_PATTERN, description=VIN_DESCRIPTION, examples=[VIN_EXAMPLE])
]


def _public(record: VehicleRecord) -> VehiclePublic:
    return VehiclePublic(
        vin=record.vin,
        brand=record.brand,
        model=record.model,
        model_year=record.model_year,
        powertrain=record.powertrain,
        created_at=record.created_at,
        revoked=record.revoked_at is not None,
        last_seen_at=record.last_seen_at,
    )


@router.get("", response_model=VehiclesPublic, summary="List registered vehicles")
async def list_vehicles(
    state: State,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> VehiclesPublic:
    limit = min(limit, state.settings.max_page_limit)
    records, count = await state.registry.page(limit=limit, offset=offset)
    return VehiclesPublic(data=[_public(r) for r in records], count=count)


@router.get(
    "/{vin}",
    response_model=VehicleDetailPublic,
    responses={404: {"model": ErrorBody, "description": "Unknown vehicle"}},
    summary="One vehicle: registry data, ECUs, connection state and last seen",
)
async def vehicle_detail(state: State, _: Admin, vin: VinPath) -> VehicleDetailPublic:
    detail = await state.registry.detail(vin)
    if detail is None:
        raise NotFoundError(f"vehicle {vin} is not registered")
    presence = detail.presence
    return VehicleDetailPublic(
        **_public(detail.record).model_dump(),
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
    responses={404: {"model": ErrorBody, "description": "Unknown vehicle"}},
    summary="Latest value and sample time of every signal the vehicle has sent",
)
async def vehicle_state(state: State, _: Admin, vin: VinPath) -> VehicleStatePublic:
    async with state.pool.acquire() as conn:
        signals = await latest_state(conn, vin)
    if not signals and await state.registry.get(vin) is None:
        raise NotFoundError(f"vehicle {vin} is not registered")
    return VehicleStatePublic(
        vin=vin,
        signals={s.signal: SignalValuePublic(value=s.value, ts=s.ts) for s in signals},
        updated_at=max((s.ts for s in signals), default=None),
    )
