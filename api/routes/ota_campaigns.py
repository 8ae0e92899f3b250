"""OTA campaigns (fleet administrators), the owner's answer to an offer (customers), each
vehicle's installed software (its owner and administrators), and ECU key registration.

These routes need only the database: they answer in an API process without the OTA service
(which signs metadata) too.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, status

from api.deps import Admin, CurrentCustomer, CurrentPrincipal, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED, ApiError
from api.routes.ota_campaign_schemas import (
    CampaignCreate,
    CampaignPublic,
    CampaignsPublic,
    EcuKeyIn,
    EcuKeyPublic,
    SoftwarePublic,
    VehicleUpdatePublic,
    VehicleUpdatesPublic,
    campaign_public,
    software_public,
    update_public,
)
from api.routes.vehicles import VinPath, visible_vehicle
from api.schemas import ErrorBody
from ota.campaigns.consent import owner_decision, retry
from ota.campaigns.creation import create_campaign
from ota.campaigns.errors import (
    CampaignExistsError,
    CampaignInvalidError,
    CampaignNotFoundError,
    CampaignStateError,
    DowngradeOverrideInvalidError,
    DowngradeRefusedError,
    ImageNotPublishedError,
    StatusTransitionError,
    UpdateNotFoundError,
)
from ota.campaigns.store import (
    campaign_stats,
    change_status,
    get_campaign,
    page_campaigns,
)
from ota.campaigns.updates import list_updates, load_update
from ota.errors import OtaError
from ota.software_record import (
    software_history,
    vehicle_software,
)
from ota.status_keys import EcuKeyInvalidError, parse_public_key, register_key
from ota.status_machine import UpdateStatus

_STATUS: tuple[tuple[type[OtaError], int], ...] = (
    (CampaignInvalidError, 422),
    (EcuKeyInvalidError, 422),
    (DowngradeOverrideInvalidError, 422),
    (CampaignNotFoundError, 404),
    (UpdateNotFoundError, 404),
    (ImageNotPublishedError, 409),
    (CampaignExistsError, 409),
    (DowngradeRefusedError, 409),
    (CampaignStateError, 409),
    (StatusTransitionError, 409),
)


class CampaignApiError(ApiError):
    def __init__(self, error: OtaError) -> None:
        super().__init__(error.message)
        self.code = error.code
        self.status_code = next((s for t, s in _STATUS if isinstance(error, t)), 500)


def _errors(*kinds: type[OtaError]) -> dict[int | str, dict[str, Any]]:
    found: dict[int | str, dict[str, Any]] = {}
    for kind, code in _STATUS:
        if kind in kinds:
            found.setdefault(code, {"model": ErrorBody, "description": ""})
            found[code]["description"] += f" {kind.code}"
    return found


router = APIRouter(
    tags=["ota campaigns"],
    responses={401: UNAUTHENTICATED, 403: FORBIDDEN, 422: INVALID_REQUEST},
)
PREFIX = "/v1/ota/campaigns"


async def _public(state: State, campaign_id: UUID) -> CampaignPublic:
    try:
        campaign = await get_campaign(state.pool, campaign_id)
    except OtaError as exc:
        raise CampaignApiError(exc) from exc
    stats = await campaign_stats(state.pool, [campaign.id])
    return campaign_public(campaign, stats[campaign.id])


@router.post(
    PREFIX,
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignPublic,
    responses={
        422: INVALID_REQUEST,
        **_errors(ImageNotPublishedError, DowngradeRefusedError, CampaignExistsError),
    },
    summary="Create a campaign: the image, targeting, waves, window, preconditions, owner info",
)
async def create(_: Admin, state: State, body: CampaignCreate) -> CampaignPublic:
    try:
        campaign = await create_campaign(state.pool, body.spec(), state.now(), campaign_id=body.id)
    except OtaError as exc:
        raise CampaignApiError(exc) from exc
    return await _public(state, campaign.id)


@router.get(PREFIX, response_model=CampaignsPublic, summary="Campaigns with live statistics")
async def list_campaigns(_: Admin, state: State, paging: Paging) -> CampaignsPublic:
    campaigns, count = await page_campaigns(state.pool, limit=paging.limit, offset=paging.offset)
    stats = await campaign_stats(state.pool, [c.id for c in campaigns])
    return CampaignsPublic(data=[campaign_public(c, stats[c.id]) for c in campaigns], count=count)


@router.get(
    PREFIX + "/{campaign_id}",
    response_model=CampaignPublic,
    responses=_errors(CampaignNotFoundError),
    summary="One campaign with its live statistics per status and wave",
)
async def get_one(_: Admin, state: State, campaign_id: UUID) -> CampaignPublic:
    return await _public(state, campaign_id)


async def _act(state: State, campaign_id: UUID, action: str) -> CampaignPublic:
    try:
        await change_status(state.pool, campaign_id, action, state.now())
    except OtaError as exc:
        raise CampaignApiError(exc) from exc
    return await _public(state, campaign_id)


_ACT_ERRORS = _errors(CampaignNotFoundError, CampaignStateError)


@router.post(
    PREFIX + "/{campaign_id}/pause",
    response_model=CampaignPublic,
    responses=_ACT_ERRORS,
    summary="Pause: no new offers (cars already updating finish)",
)
async def pause(_: Admin, state: State, campaign_id: UUID) -> CampaignPublic:
    return await _act(state, campaign_id, "pause")


@router.post(
    PREFIX + "/{campaign_id}/resume",
    response_model=CampaignPublic,
    responses=_ACT_ERRORS,
    summary="Resume a paused or halted campaign (failures so far are accepted)",
)
async def resume(_: Admin, state: State, campaign_id: UUID) -> CampaignPublic:
    return await _act(state, campaign_id, "resume")


@router.post(
    PREFIX + "/{campaign_id}/cancel",
    response_model=CampaignPublic,
    responses=_ACT_ERRORS,
    summary="Cancel: updates not yet downloading are withdrawn",
)
async def cancel(_: Admin, state: State, campaign_id: UUID) -> CampaignPublic:
    return await _act(state, campaign_id, "cancel")


@router.get(
    PREFIX + "/{campaign_id}/vehicles",
    response_model=VehicleUpdatesPublic,
    responses=_errors(CampaignNotFoundError),
    summary="Each targeted vehicle's update status, with the time of every step",
)
async def list_vehicle_updates(
    _: Admin,
    state: State,
    campaign_id: UUID,
    paging: Paging,
    status_filter: Annotated[UpdateStatus | None, Query(alias="status")] = None,
) -> VehicleUpdatesPublic:
    await _public(state, campaign_id)  # 404 for an unknown campaign
    updates, count = await list_updates(
        state.pool, campaign_id, status=status_filter, limit=paging.limit, offset=paging.offset
    )
    return VehicleUpdatesPublic(data=[update_public(u) for u in updates], count=count)


@router.get(
    PREFIX + "/{campaign_id}/vehicles/{vin}",
    response_model=VehicleUpdatePublic,
    responses=_errors(UpdateNotFoundError),
    summary="One vehicle's update in the campaign",
)
async def get_vehicle_update(
    _: Admin, state: State, campaign_id: UUID, vin: VinPath
) -> VehicleUpdatePublic:
    async with state.pool.acquire() as conn:
        found = await load_update(conn, campaign_id, vin)
    if found is None:
        raise CampaignApiError(
            UpdateNotFoundError(
                f"{vin} is not in campaign {campaign_id}", vin=vin, campaign_id=str(campaign_id)
            )
        )
    return update_public(found)


@router.post(
    PREFIX + "/{campaign_id}/vehicles/{vin}/retry",
    response_model=VehicleUpdatePublic,
    responses=_errors(UpdateNotFoundError, StatusTransitionError),
    summary="Offer a failed or rolled-back update again (a new attempt)",
)
async def retry_update(
    _: Admin, state: State, campaign_id: UUID, vin: VinPath
) -> VehicleUpdatePublic:
    try:
        return update_public(
            await retry(state.pool, vin=vin, campaign_id=campaign_id, now=state.now())
        )
    except OtaError as exc:
        raise CampaignApiError(exc) from exc


# -- the owner's answer -------------------------------------------------------------------------


async def _decide(
    state: State, customer: UUID, vin: str, campaign_id: UUID, *, accept: bool
) -> VehicleUpdatePublic:
    try:
        found = await owner_decision(
            state.pool,
            customer_id=customer,
            vin=vin,
            campaign_id=campaign_id,
            accept=accept,
            now=state.now(),
        )
    except OtaError as exc:
        raise CampaignApiError(exc) from exc
    return update_public(found)


_DECIDE_ERRORS = _errors(UpdateNotFoundError, StatusTransitionError)


@router.post(
    "/v1/me/vehicles/{vin}/ota/{campaign_id}/accept",
    response_model=VehicleUpdatePublic,
    responses=_DECIDE_ERRORS,
    summary="Accept an offered update of my car (after reading purpose, duration, functions)",
)
async def accept_offer(
    customer: CurrentCustomer, state: State, vin: VinPath, campaign_id: UUID
) -> VehicleUpdatePublic:
    return await _decide(state, customer, vin, campaign_id, accept=True)


@router.post(
    "/v1/me/vehicles/{vin}/ota/{campaign_id}/decline",
    response_model=VehicleUpdatePublic,
    responses=_DECIDE_ERRORS,
    summary="Decline an offered update of my car",
)
async def decline_offer(
    customer: CurrentCustomer, state: State, vin: VinPath, campaign_id: UUID
) -> VehicleUpdatePublic:
    return await _decide(state, customer, vin, campaign_id, accept=False)


# -- installed software and ECU keys ------------------------------------------------------------


@router.get(
    "/v1/vehicles/{vin}/software",
    response_model=SoftwarePublic,
    responses={404: {"model": ErrorBody, "description": "Unknown vehicle, or not yours"}},
    summary="Installed software per ECU (RXSWIN-style record) and its recent changes",
)
async def software(
    principal: CurrentPrincipal,
    state: State,
    vin: VinPath,
    history: Annotated[int, Query(ge=0, le=200, description="Changes to include")] = 20,
) -> SoftwarePublic:
    await visible_vehicle(state, principal, vin)
    current = await vehicle_software(state.pool, vin)
    changes = await software_history(state.pool, vin, limit=history) if history else []
    return software_public(current, changes)


@router.put(
    "/v1/vehicles/{vin}/ota/ecu-key",
    response_model=EcuKeyPublic,
    responses={
        404: {"model": ErrorBody, "description": "Unknown vehicle"},
        **_errors(EcuKeyInvalidError),
    },
    summary="Register the car's ECU report-signing key (ed25519, at production)",
)
async def register_ecu_key(
    principal: Admin, state: State, vin: VinPath, body: EcuKeyIn
) -> EcuKeyPublic:
    await visible_vehicle(state, principal, vin)
    try:
        key = await register_key(state.pool, vin, parse_public_key(body.public_key), state.now())
    except OtaError as exc:
        raise CampaignApiError(exc) from exc
    return EcuKeyPublic(vin=key.vin, keyid=key.keyid, registered_at=key.registered_at)
