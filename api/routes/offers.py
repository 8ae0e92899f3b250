"""Offers: administration of rules, places and partners; the customer's offers; redemption by
partners; KPIs.

- ``/v1/offers/rules``: rules are data. ``PUT`` writes the next version (``expected_version``
  guards against a lost update) and every version stays readable.
- ``/v1/offers/places``: points of interest and geofences, imported as GeoJSON or CSV.
- ``/v1/offers/partners``: a partner and its API key (shown once).
- ``/v1/me/offers``: what the customer was offered; ``opened`` and ``clicked`` feed the KPIs.
- ``POST /v1/offers/redeem``: a partner's till redeems a code with ``X-Partner-Key``.
- ``/v1/offers/kpis``: eligible, suppressed by reason, sent, opened, clicked, redeemed,
  conversion and trigger-to-delivery per rule and campaign; ``format=csv`` for a spreadsheet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import Field

from api.deps import Admin, CurrentCustomer, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED, ApiError, NotFoundError
from api.offers.store import (
    KpiRow,
    OfferNotFoundError,
    PartnerNotFoundError,
    create_partner,
    kpis,
    kpis_csv,
    mark,
    my_offers,
    partner_for_key,
    redeem,
    rotate_partner_key,
)
from api.schemas import NO_CONTROL_CHARACTERS, ApiModel, ErrorBody
from diagnostics.offers.config_store import (
    RuleNotFoundError,
    create_rule,
    get_rule,
    load_places,
    load_rules,
    rule_versions,
    update_rule,
    upsert_places,
)
from diagnostics.offers.geo import Circle, Geofence
from diagnostics.offers.place_import import (
    PlaceImportError,
    geofences_from_csv,
    geofences_from_geojson,
)
from diagnostics.offers.rules import RULE_ID_PATTERN, OfferRule, OfferRuleSpec
from protocol.places import PlaceKind

router = APIRouter(tags=["offers"], responses={401: UNAUTHENTICATED, 422: INVALID_REQUEST})

RuleIdPath = Annotated[str, Path(pattern=RULE_ID_PATTERN, examples=["fuel-discount-partner"])]
MAX_KPI_RANGE = timedelta(days=366)


class InvalidPlacesError(ApiError):
    status_code = 422
    code = PlaceImportError.code


class UnsupportedMediaTypeError(ApiError):
    status_code = 415
    code = "unsupported_media_type"


# --- rules ------------------------------------------------------------------------------------


class RuleCreate(OfferRuleSpec):
    id: str = Field(pattern=RULE_ID_PATTERN, examples=["fuel-discount-partner"])


class RuleUpdate(OfferRuleSpec):
    expected_version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="409 unless the rule is at this version"
    )


class RulesPublic(ApiModel):
    data: list[OfferRule]


class RuleVersionPublic(ApiModel):
    rule: OfferRule
    created_at: datetime
    created_by: str


class RuleVersionsPublic(ApiModel):
    data: list[RuleVersionPublic]


_NO_RULE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown rule"},
    403: FORBIDDEN,
}


@router.get(
    "/v1/offers/rules",
    response_model=RulesPublic,
    responses={403: FORBIDDEN},
    summary="Every offer rule at its current version",
)
async def list_rules(state: State, _: Admin) -> RulesPublic:
    async with state.pool.acquire() as conn:
        return RulesPublic(data=await load_rules(conn))


@router.post(
    "/v1/offers/rules",
    status_code=status.HTTP_201_CREATED,
    response_model=OfferRule,
    responses={403: FORBIDDEN, 409: {"model": ErrorBody, "description": "The id is taken"}},
    summary="Create an offer rule (version 1)",
)
async def create_offer_rule(state: State, admin: Admin, body: RuleCreate) -> OfferRule:
    spec = OfferRuleSpec.model_validate(body.model_dump(exclude={"id"}))
    async with state.pool.acquire() as conn:
        return await create_rule(conn, body.id, spec, now=state.now(), by=admin.subject)


@router.get(
    "/v1/offers/rules/{rule_id}",
    response_model=OfferRule,
    responses=_NO_RULE,
    summary="One offer rule at its current version",
)
async def get_offer_rule(state: State, _: Admin, rule_id: RuleIdPath) -> OfferRule:
    async with state.pool.acquire() as conn:
        try:
            return await get_rule(conn, rule_id)
        except RuleNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc


@router.put(
    "/v1/offers/rules/{rule_id}",
    response_model=OfferRule,
    responses={
        **_NO_RULE,
        409: {"model": ErrorBody, "description": "Not at expected_version (someone else edited)"},
    },
    summary="Edit an offer rule: writes its next version",
)
async def update_offer_rule(
    state: State, admin: Admin, rule_id: RuleIdPath, body: RuleUpdate
) -> OfferRule:
    spec = OfferRuleSpec.model_validate(body.model_dump(exclude={"expected_version"}))
    async with state.pool.acquire() as conn:
        try:
            return await update_rule(
                conn,
                rule_id,
                spec,
                expected_version=body.expected_version,
                now=state.now(),
                by=admin.subject,
            )
        except RuleNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc


@router.get(
    "/v1/offers/rules/{rule_id}/versions",
    response_model=RuleVersionsPublic,
    responses=_NO_RULE,
    summary="Every version of an offer rule, newest first",
)
async def offer_rule_versions(state: State, _: Admin, rule_id: RuleIdPath) -> RuleVersionsPublic:
    async with state.pool.acquire() as conn:
        try:
            versions = await rule_versions(conn, rule_id)
        except RuleNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc
    return RuleVersionsPublic(
        data=[RuleVersionPublic(rule=r, created_at=at, created_by=by) for r, at, by in versions]
    )


# --- places -----------------------------------------------------------------------------------


class PlacePublic(ApiModel):
    id: str
    kind: PlaceKind
    name: str
    brand: str
    partner_id: str | None
    geometry: dict[str, Any] = Field(
        description="GeoJSON geometry: a Point with `radius_m` beside it, or a Polygon"
    )
    radius_m: float | None


class PlacesPublic(ApiModel):
    data: list[PlacePublic]
    count: int


class PlacesImported(ApiModel):
    imported: int = Field(description="Places created or replaced (by id)")


def place_public(fence: Geofence) -> PlacePublic:
    g = fence.geometry
    if isinstance(g, Circle):
        geometry: dict[str, Any] = {"type": "Point", "coordinates": [g.lon, g.lat]}
        radius: float | None = g.radius_m
    else:
        rings = [g.exterior, *g.holes]
        ring_coords = [[[lon, lat] for lat, lon in (*ring, ring[0])] for ring in rings]
        geometry, radius = {"type": "Polygon", "coordinates": ring_coords}, None
    return PlacePublic(
        id=fence.id,
        kind=fence.kind,
        name=fence.name,
        brand=fence.brand,
        partner_id=fence.partner_id,
        geometry=geometry,
        radius_m=radius,
    )


@router.get(
    "/v1/offers/places",
    response_model=PlacesPublic,
    responses={403: FORBIDDEN},
    summary="Points of interest and geofences",
)
async def list_places(
    state: State,
    _: Admin,
    paging: Paging,
    kind: Annotated[PlaceKind | None, Query(description="Only places of this kind")] = None,
) -> PlacesPublic:
    async with state.pool.acquire() as conn:
        fences = [f for f in await load_places(conn) if kind is None or f.kind is kind]
    page = fences[paging.offset : paging.offset + paging.limit]
    return PlacesPublic(data=[place_public(f) for f in page], count=len(fences))


_PLACES_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/geo+json": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/v1/offers/places",
    response_model=PlacesImported,
    responses={
        403: FORBIDDEN,
        415: {"model": ErrorBody, "description": "Neither GeoJSON nor CSV"},
    },
    openapi_extra=_PLACES_BODY,
    summary="Import places: a GeoJSON FeatureCollection or CSV (id,kind,name,lat,lon,...)",
)
async def import_places(request: Request, state: State, _: Admin) -> PlacesImported:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    try:
        if media_type in ("application/geo+json", "application/json"):
            fences = geofences_from_geojson(body)
        elif media_type == "text/csv":
            fences = geofences_from_csv(body)
        else:
            raise UnsupportedMediaTypeError(
                "send application/geo+json (or application/json) or text/csv,"
                f" not {media_type or 'nothing'}"
            )
    except PlaceImportError as exc:
        raise InvalidPlacesError(str(exc)) from exc
    async with state.pool.acquire() as conn, conn.transaction():
        count = await upsert_places(conn, fences, now=state.now())
    return PlacesImported(imported=count)


# --- partners ---------------------------------------------------------------------------------


class PartnerCreate(ApiModel):
    id: str = Field(pattern=RULE_ID_PATTERN, examples=["star"])
    name: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)


class PartnerCreated(ApiModel):
    id: str
    name: str
    api_key: str = Field(description="For `X-Partner-Key`; shown once, only its hash is kept")


@router.post(
    "/v1/offers/partners",
    status_code=status.HTTP_201_CREATED,
    response_model=PartnerCreated,
    responses={403: FORBIDDEN, 409: {"model": ErrorBody, "description": "The id is taken"}},
    summary="Create a partner and its API key",
)
async def create_offer_partner(state: State, _: Admin, body: PartnerCreate) -> PartnerCreated:
    async with state.pool.acquire() as conn:
        key = await create_partner(conn, body.id, body.name, state.now())
    return PartnerCreated(id=body.id, name=body.name, api_key=key)


PartnerIdPath = Annotated[str, Path(pattern=RULE_ID_PATTERN, examples=["star"])]


@router.post(
    "/v1/offers/partners/{partner_id}/key",
    response_model=PartnerCreated,
    responses={403: FORBIDDEN, 404: {"model": ErrorBody, "description": "Unknown partner"}},
    summary="Issue a new API key for a partner (the old one stops working)",
)
async def rotate_offer_partner_key(
    state: State, _: Admin, partner_id: PartnerIdPath
) -> PartnerCreated:
    async with state.pool.acquire() as conn:
        try:
            key = await rotate_partner_key(conn, partner_id)
        except PartnerNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc
        name = await conn.fetchval("SELECT name FROM offer_partners WHERE id = $1", partner_id)
    return PartnerCreated(id=partner_id, name=name, api_key=key)


# --- the customer's offers --------------------------------------------------------------------


class OfferPublic(ApiModel):
    id: UUID
    rule_id: str
    campaign: str
    kind: str
    category: Literal["promotion", "service"]
    vin: str
    code: str
    partner_id: str | None
    place_id: str | None
    title: str
    details: dict[str, Any]
    triggered_at: datetime
    expires_at: datetime
    opened_at: datetime | None
    clicked_at: datetime | None
    redeemed_at: datetime | None
    redeemed_place_id: str | None


class OffersPublic(ApiModel):
    data: list[OfferPublic]
    count: int


_NO_OFFER: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown offer, or not yours"},
    403: FORBIDDEN,
}


@router.get(
    "/v1/me/offers",
    response_model=OffersPublic,
    responses={403: FORBIDDEN},
    summary="My offers, newest first",
)
async def list_my_offers(state: State, customer: CurrentCustomer, paging: Paging) -> OffersPublic:
    async with state.pool.acquire() as conn:
        rows, total = await my_offers(conn, customer, limit=paging.limit, offset=paging.offset)
    return OffersPublic(data=[OfferPublic.model_validate(r) for r in rows], count=total)


@router.post(
    "/v1/me/offers/{offer_id}/{action}",
    response_model=OfferPublic,
    responses=_NO_OFFER,
    summary="Record that I opened or clicked an offer (the first time counts)",
)
async def mark_my_offer(
    state: State,
    customer: CurrentCustomer,
    offer_id: UUID,
    action: Annotated[Literal["opened", "clicked"], Path()],
) -> OfferPublic:
    async with state.pool.acquire() as conn:
        try:
            row = await mark(conn, customer, offer_id, action, state.now())
        except OfferNotFoundError as exc:
            raise NotFoundError("no such offer") from exc
    return OfferPublic.model_validate(row)


# --- redemption -------------------------------------------------------------------------------


class RedeemRequest(ApiModel):
    code: str = Field(
        min_length=4, max_length=32, pattern=NO_CONTROL_CHARACTERS, examples=["FL-7K2M-Q9XD"]
    )
    place_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="Where it was redeemed"
    )


class RedemptionPublic(ApiModel):
    """What the partner's till learns: the code, what it is worth, that it is now used. Not the
    car, not where it was, not what the customer opened (the customer's data is theirs)."""

    code: str
    title: str
    discount: str | None
    place_id: str | None = Field(description="Where it was redeemed")
    expires_at: datetime
    redeemed_at: datetime


def redemption_public(row: dict[str, Any]) -> RedemptionPublic:
    return RedemptionPublic(
        code=row["code"],
        title=row["title"],
        discount=row["details"].get("discount"),
        place_id=row["redeemed_place_id"],
        expires_at=row["expires_at"],
        redeemed_at=row["redeemed_at"],
    )


class PartnerKeyError(ApiError):
    status_code = 401
    code = "invalid_partner_key"


#: A 401 must say how to authenticate (RFC 9110 section 11.6.1): with the partner's key.
PARTNER_CHALLENGE = {"WWW-Authenticate": 'PartnerKey realm="FleetLink offers"'}


@router.post(
    "/v1/offers/redeem",
    response_model=RedemptionPublic,
    responses={
        401: {
            "model": ErrorBody,
            "description": "Missing or unknown X-Partner-Key (code invalid_partner_key)",
        },
        404: {"model": ErrorBody, "description": "No such code for this partner"},
        409: {"model": ErrorBody, "description": "Already redeemed (code offer_already_redeemed)"},
        410: {"model": ErrorBody, "description": "Expired (code offer_expired)"},
    },
    summary="Redeem an offer code at a partner (X-Partner-Key)",
)
async def redeem_offer(
    state: State,
    body: RedeemRequest,
    x_partner_key: Annotated[
        str | None, Header(max_length=200, description="The partner's API key")
    ] = None,
) -> RedemptionPublic:
    async with state.pool.acquire() as conn:
        partner = await partner_for_key(conn, x_partner_key) if x_partner_key else None
        if partner is None:
            raise PartnerKeyError(
                "a valid X-Partner-Key header is required", headers=PARTNER_CHALLENGE
            )
        try:
            row = await redeem(conn, partner, body.code, body.place_id, state.now())
        except OfferNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc
    return redemption_public(row)


# --- KPIs -------------------------------------------------------------------------------------


class KpiPublic(ApiModel):
    rule_id: str
    campaign: str
    eligible: int = Field(description="Decisions taken: every time the rule's condition held")
    suppressed: dict[str, int] = Field(description="Suppressed decisions by reason")
    sent: int
    opened: int
    clicked: int
    redeemed: int
    conversion_rate: float | None = Field(description="redeemed / sent")
    trigger_to_delivery_p50_s: float | None = Field(
        description="From the backend seeing the triggering data to the app delivery"
    )
    trigger_to_delivery_p99_s: float | None


class KpisPublic(ApiModel):
    start: datetime
    end: datetime
    data: list[KpiPublic]


def _kpi_public(row: KpiRow) -> KpiPublic:
    return KpiPublic.model_validate(row, from_attributes=True)


@router.get(
    "/v1/offers/kpis",
    response_model=KpisPublic,
    responses={
        403: FORBIDDEN,
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
    summary="Offer KPIs per rule and campaign (JSON, or CSV with format=csv)",
)
async def offer_kpis(
    *,
    state: State,
    _: Admin,
    start: Annotated[datetime | None, Query(description="Default: 30 days before end")] = None,
    end: Annotated[datetime | None, Query(description="Default: now")] = None,
    rule_id: Annotated[str | None, Query(pattern=RULE_ID_PATTERN)] = None,
    campaign: Annotated[str | None, Query(max_length=100, pattern=NO_CONTROL_CHARACTERS)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    try:
        end = _aware(end) if end is not None else state.now()
        start = _aware(start) if start is not None else end - timedelta(days=30)
        valid = start < end and end - start <= MAX_KPI_RANGE
    except OverflowError:  # a default start before year 1
        valid = False
    if not valid or start is None or end is None:
        raise BadRangeError("start must be before end, and the range at most 366 days")
    async with state.pool.acquire() as conn:
        rows = await kpis(conn, start, end, rule_id=rule_id, campaign=campaign)
    if format == "csv":
        return Response(
            kpis_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="offer-kpis.csv"'},
        )
    return KpisPublic(start=start, end=end, data=[_kpi_public(r) for r in rows])


class BadRangeError(ApiError):
    status_code = 422
    code = "invalid_request"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
