"""Service centres and mobile vans (read by everyone signed in, written by admins), and slot
search: who can do a job near a car or a place, nearest first, with free slots."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from api.deps import Admin, CurrentPrincipal, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED, NotFoundError
from api.schemas import ErrorBody
from api.service.centres import CentreStore
from api.service.errors import InvalidRangeError, PositionUnknownError
from api.service.schemas import (
    SLUG_PATTERN,
    CentreCreate,
    CentrePublic,
    CentresPublic,
    CentreUpdate,
    Instant,
    PositionPublic,
    ServiceOptionPublic,
    SlotPublic,
    SlotSearchPublic,
    VanCreate,
    VanPublic,
    VansPublic,
    VanUpdate,
)
from api.service.slot_search import CandidateSlots, candidates, with_free_slots
from api.service.vehicle_facts import last_position, vehicle_facts
from api.service.views import centre_public, local_iso, opening_hours_public, van_public
from protocol.vin import VIN_PATTERN

router = APIRouter(
    prefix="/v1/service",
    tags=["service network"],
    responses={401: UNAUTHENTICATED, 422: INVALID_REQUEST},
)
CentreIdPath = Annotated[str, Path(pattern=SLUG_PATTERN, description="Centre id (slug)")]
VanIdPath = Annotated[str, Path(pattern=SLUG_PATTERN, description="Van id (slug)")]
SkillQuery = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{1,39}$", examples=["tyres"])]
_CENTRE_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown centre (centre_not_found)"}
}
_VAN_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown van (van_not_found)"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The id is taken (already_exists)"}
}
DEFAULT_SEARCH_DAYS = 7
MAX_SEARCH_DAYS = 31
DEFAULT_RADIUS_KM = 25.0


@router.get("/centres", response_model=CentresPublic, summary="List service centres, by id")
async def list_centres(
    state: State,
    _: CurrentPrincipal,
    paging: Paging,
    skill: SkillQuery = None,
    active_only: Annotated[bool, Query(description="Only centres taking bookings")] = False,
) -> CentresPublic:
    records, count = await CentreStore(state.pool).page(
        limit=paging.limit, offset=paging.offset, skill=skill, active_only=active_only
    )
    return CentresPublic(data=[centre_public(r) for r in records], count=count)


@router.post(
    "/centres",
    status_code=status.HTTP_201_CREATED,
    response_model=CentrePublic,
    responses={403: FORBIDDEN, **_CONFLICT},
    summary="Create a service centre (admin)",
)
async def create_centre(state: State, _: Admin, body: CentreCreate) -> CentrePublic:
    fields = body.model_dump(exclude={"opening_hours"})
    hours = [h.interval() for h in body.opening_hours]
    return centre_public(await CentreStore(state.pool).create(fields, hours, now=state.now()))


@router.get(
    "/centres/{centre_id}",
    response_model=CentrePublic,
    responses=_CENTRE_404,
    summary="One service centre",
)
async def get_centre(state: State, _: CurrentPrincipal, centre_id: CentreIdPath) -> CentrePublic:
    return centre_public(await CentreStore(state.pool).get(centre_id))


@router.patch(
    "/centres/{centre_id}",
    response_model=CentrePublic,
    responses={403: FORBIDDEN, **_CENTRE_404},
    summary="Change a service centre (admin)",
    description="Only the fields sent change; `opening_hours` replaces the week. Existing "
    "bookings stay; fewer bays or other hours apply to new bookings.",
)
async def patch_centre(
    state: State, _: Admin, centre_id: CentreIdPath, body: CentreUpdate
) -> CentrePublic:
    changes = body.model_dump(exclude_unset=True, exclude={"opening_hours"})
    hours = [h.interval() for h in body.opening_hours] if body.opening_hours is not None else None
    record = await CentreStore(state.pool).update(centre_id, changes, hours, now=state.now())
    return centre_public(record)


@router.get("/vans", response_model=VansPublic, summary="List mobile service vans, by id")
async def list_vans(state: State, _: CurrentPrincipal, paging: Paging) -> VansPublic:
    records, count = await CentreStore(state.pool).page_vans(
        limit=paging.limit, offset=paging.offset
    )
    return VansPublic(data=[van_public(r) for r in records], count=count)


@router.post(
    "/vans",
    status_code=status.HTTP_201_CREATED,
    response_model=VanPublic,
    responses={403: FORBIDDEN, **_CONFLICT, **_CENTRE_404},
    summary="Create a mobile service van (admin)",
)
async def create_van(state: State, _: Admin, body: VanCreate) -> VanPublic:
    return van_public(await CentreStore(state.pool).create_van(body.model_dump(), now=state.now()))


@router.get(
    "/vans/{van_id}", response_model=VanPublic, responses=_VAN_404, summary="One service van"
)
async def get_van(state: State, _: CurrentPrincipal, van_id: VanIdPath) -> VanPublic:
    return van_public(await CentreStore(state.pool).get_van(van_id))


@router.patch(
    "/vans/{van_id}",
    response_model=VanPublic,
    responses={403: FORBIDDEN, **_VAN_404},
    summary="Change a mobile service van (admin)",
)
async def patch_van(state: State, _: Admin, van_id: VanIdPath, body: VanUpdate) -> VanPublic:
    changes = body.model_dump(exclude_unset=True)
    return van_public(await CentreStore(state.pool).update_van(van_id, changes, now=state.now()))


@router.get(
    "/slots",
    response_model=SlotSearchPublic,
    responses={
        404: {"model": ErrorBody, "description": "Unknown vehicle, or not yours"},
        409: {
            "model": ErrorBody,
            "description": "No coordinates given and no known position of the vehicle "
            "(position_unknown)",
        },
    },
    summary="Free slots near a vehicle or a place, nearest workshop first",
    description="The position is `lat`/`lon`, or else the last known position of `vin` (a "
    "vehicle the caller may see, sampled within their window on it). Workshops within "
    "`radius_km` offering every `skill`; for an electric `vin`, also mobile vans whose range "
    "covers the position. Slots are cut from each centre's opening hours in its own time "
    "zone; only slots with a free place are listed. Paging applies to the providers.",
)
async def search_slots(
    *,
    state: State,
    principal: CurrentPrincipal,
    paging: Paging,
    vin: Annotated[str | None, Query(pattern=VIN_PATTERN)] = None,
    skill: Annotated[
        list[Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{1,39}$")]],
        Query(max_length=10, description="Required skills (repeat for several)"),
    ] = [],  # noqa: B006  FastAPI copies query defaults
    start: Annotated[Instant | None, Query(alias="from", description="Default: now")] = None,
    end: Annotated[Instant | None, Query(alias="to", description="Default: 7 days")] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    radius_km: Annotated[float, Query(gt=0, le=500)] = DEFAULT_RADIUS_KM,
) -> SlotSearchPublic:
    now = state.now()
    begin = max(start or now, now)
    finish = end or (start or now) + timedelta(days=DEFAULT_SEARCH_DAYS)
    if finish <= begin or finish - begin > timedelta(days=MAX_SEARCH_DAYS):
        raise InvalidRangeError(
            f"to must be after from and now, and at most {MAX_SEARCH_DAYS} days"
        )
    if (lat is None) != (lon is None):
        raise InvalidRangeError("give both lat and lon, or neither")
    if lat is None and vin is None:
        raise InvalidRangeError("give lat and lon, or the vin of a vehicle")
    async with state.pool.acquire() as conn:
        facts, window = None, None
        if vin is not None:
            window = await state.access.vehicle(principal, vin, now)
            facts = await vehicle_facts(conn, vin) if window is not None else None
            if window is None or facts is None:
                raise NotFoundError(f"vehicle {vin} is not registered")
        if lat is not None and lon is not None:
            origin = PositionPublic(lat=lat, lon=lon, source="query", ts=None)
        else:
            assert vin is not None and window is not None
            known = await last_position(conn, vin, window)
            if known is None:
                raise PositionUnknownError(f"no known position of {vin}: give lat and lon")
            origin = PositionPublic(lat=known.lat, lon=known.lon, source="vehicle", ts=known.ts)
        found = await candidates(
            conn,
            lat=origin.lat,
            lon=origin.lon,
            skills=sorted(set(skill)),
            radius_km=radius_km,
            with_vans=facts is not None and facts.mobile_service_eligible,
        )
        page = found[paging.offset : paging.offset + paging.limit]
        listed = await with_free_slots(conn, page, start=begin, end=finish)
    return SlotSearchPublic(origin=origin, data=[_option(e) for e in listed], count=len(found))


def _option(entry: CandidateSlots) -> ServiceOptionPublic:
    provider, centre = entry.candidate.provider, entry.candidate.provider.centre
    van = provider.van
    return ServiceOptionPublic(
        kind="mobile" if van else "workshop",
        centre_id=centre.id,
        centre_name=centre.name,
        van_id=van.id if van else None,
        van_name=van.name if van else None,
        address=centre.address,
        lat=centre.lat,
        lon=centre.lon,
        timezone=centre.timezone,
        distance_km=round(entry.candidate.distance_km, 3),
        skills=list(provider.skills),
        opening_hours=opening_hours_public(centre),
        slots=[
            SlotPublic(
                start=s.start,
                end=s.end,
                local_start=local_iso(s.start, centre.timezone),
                free=s.free,
                capacity=s.capacity,
            )
            for s in entry.slots
        ],
    )
