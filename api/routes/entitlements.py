"""Feature entitlements of a vehicle (issue 9): grant and revoke (administrators), list
(administrators and the owner).

Each grant or revocation allocates the vehicle's next signed entitlement document version in its
own transaction and queues the push (``ota.entitlements``); the push service signs it and sends
it to the car over ``v1/vehicles/{VIN}/commands``, and again when the car next comes online.
``document`` in the listing shows how far that got: allocated, signed, pushed, and acknowledged
by the car.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, status
from pydantic import AwareDatetime, Field

from api.deps import Admin, CurrentPrincipal, NoStore, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED, ApiError, ForbiddenError
from api.routes.vehicles import VinPath, visible_vehicle
from api.schemas import ApiModel, ErrorBody
from api.security.principal import Role
from ota.entitlements.errors import (
    EntitlementError,
    EntitlementInvalidError,
    EntitlementNotFoundError,
    EntitlementVehicleNotFoundError,
    TooManyEntitlementsError,
)
from ota.entitlements.store import (
    DocumentState,
    Entitlement,
    EntitlementGrant,
    EntitlementStore,
)
from protocol.entitlements import FEATURE_NAME_PATTERN, EntitlementKind

router = APIRouter(
    prefix="/v1/vehicles",
    tags=["entitlements"],
    responses={401: UNAUTHENTICATED, 403: FORBIDDEN, 422: INVALID_REQUEST},
    dependencies=[NoStore],
)

EntitlementIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


class EntitlementCreate(ApiModel):
    feature: str = Field(pattern=FEATURE_NAME_PATTERN, examples=["heated_seats"])
    kind: EntitlementKind
    valid_from: AwareDatetime | None = Field(default=None, description="Default: now")
    valid_until: AwareDatetime | None = Field(
        default=None, description="Null: no end (not allowed for a trial)"
    )
    subscription_id: int | None = Field(
        default=None, ge=1, description="The vehicle's subscription that pays for it"
    )


class VehicleEntitlementPublic(ApiModel):
    id: int
    vin: str
    feature: str
    kind: EntitlementKind
    subscription_id: int | None
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None
    status: Literal["active", "scheduled", "expired", "revoked"]
    document_version: int = Field(description="The document version carrying the last change")


class EntitlementDocumentPublic(ApiModel):
    version: int = Field(description="Newest version allocated")
    signed_version: int
    pushed_version: int = Field(description="Newest version the broker accepted for the car")
    pushed_at: datetime | None
    acknowledged_version: int = Field(description="Newest version the car reported applying")
    acknowledged_at: datetime | None
    last_error: str | None


class VehicleEntitlementsPublic(ApiModel):
    vin: str
    data: list[VehicleEntitlementPublic]
    count: int
    document: EntitlementDocumentPublic | None = Field(description="Null: never changed")


_STATUS: tuple[tuple[type[EntitlementError], int], ...] = (
    (EntitlementNotFoundError, 404),
    (EntitlementVehicleNotFoundError, 404),
    (EntitlementInvalidError, 422),
    (TooManyEntitlementsError, 409),
)


class EntitlementApiError(ApiError):
    """An entitlement error as the API answers it: same ``code``, an HTTP status by kind."""

    def __init__(self, error: EntitlementError) -> None:
        super().__init__(error.message)
        self.code = error.code
        self.status_code = next((s for t, s in _STATUS if isinstance(error, t)), 500)


@contextmanager
def entitlement_errors() -> Iterator[None]:
    try:
        yield
    except EntitlementError as exc:
        raise EntitlementApiError(exc) from exc


def entitlement_public(record: Entitlement, now: datetime) -> VehicleEntitlementPublic:
    return VehicleEntitlementPublic(
        id=record.id,
        vin=record.vin,
        feature=record.feature,
        kind=EntitlementKind(record.kind),
        subscription_id=record.subscription_id,
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        revoked_at=record.revoked_at,
        status=record.status(now),
        document_version=record.version,
    )


def document_public(state: DocumentState | None) -> EntitlementDocumentPublic | None:
    if state is None:
        return None
    return EntitlementDocumentPublic(
        version=state.version,
        signed_version=state.signed_version,
        pushed_version=state.pushed_version,
        pushed_at=state.pushed_at,
        acknowledged_version=state.acknowledged_version,
        acknowledged_at=state.acknowledged_at,
        last_error=state.last_error,
    )


@router.post(
    "/{vin}/entitlements",
    status_code=status.HTTP_201_CREATED,
    response_model=VehicleEntitlementPublic,
    responses={
        404: {"model": ErrorBody, "description": "Unknown vehicle"},
        409: {"model": ErrorBody, "description": "Too many entitlements (too_many_entitlements)"},
    },
    summary="Grant a feature to a vehicle (admin)",
    description="Creates the vehicle's next signed entitlement document and queues its push "
    "to the car. `422 entitlement_invalid`: a window that ends before it starts or in the past, "
    "a trial without `valid_until`, a subscription of another vehicle.",
)
async def grant_entitlement(
    state: State, principal: Admin, vin: VinPath, body: EntitlementCreate
) -> VehicleEntitlementPublic:
    await visible_vehicle(state, principal, vin)
    grant = EntitlementGrant(
        feature=body.feature,
        kind=body.kind,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        subscription_id=body.subscription_id,
    )
    now = state.now()
    with entitlement_errors():
        record = await EntitlementStore(state.pool).grant(vin, grant, now)
    return entitlement_public(record, now)


@router.delete(
    "/{vin}/entitlements/{entitlement_id}",
    response_model=VehicleEntitlementPublic,
    responses={404: {"model": ErrorBody, "description": "Unknown vehicle or entitlement"}},
    summary="Revoke a vehicle's entitlement (admin)",
    description="Creates the vehicle's next signed entitlement document, without the feature, "
    "and queues its push; a car offline now gets it at its next connection. Idempotent: "
    "revoking a revoked entitlement returns it unchanged.",
)
async def revoke_entitlement(
    state: State, principal: Admin, vin: VinPath, entitlement_id: EntitlementIdPath
) -> VehicleEntitlementPublic:
    await visible_vehicle(state, principal, vin)
    now = state.now()
    with entitlement_errors():
        record = await EntitlementStore(state.pool).revoke(vin, entitlement_id, now)
    return entitlement_public(record, now)


@router.get(
    "/{vin}/entitlements",
    response_model=VehicleEntitlementsPublic,
    responses={404: {"model": ErrorBody, "description": "Unknown vehicle, or not yours"}},
    summary="A vehicle's entitlements (admin: all, with history; owner: in force or scheduled)",
)
async def list_entitlements(
    state: State, principal: CurrentPrincipal, vin: VinPath
) -> VehicleEntitlementsPublic:
    if principal.role is Role.SERVICE_CENTER:
        raise ForbiddenError("entitlements are for administrators and the vehicle's owner")
    await visible_vehicle(state, principal, vin)
    store = EntitlementStore(state.pool)
    now = state.now()
    customer_id = principal.customer_id
    if customer_id is not None:
        records = await store.current_for_customer(vin, customer_id, now)
    else:
        records = await store.history(vin)
    return VehicleEntitlementsPublic(
        vin=vin,
        data=[entitlement_public(r, now) for r in records],
        count=len(records),
        document=document_public(await store.document_state(vin)),
    )
