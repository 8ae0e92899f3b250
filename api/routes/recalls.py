"""Recall campaigns and warranty terms (admin): what the work-order checks compare cars with."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from api.deps import Admin, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED
from api.schemas import ErrorBody
from api.service.catalogue import RecallStore, WarrantyStore
from api.service.views import recall_public
from api.service.warranty import WarrantyTerms
from api.service.work_order_schemas import (
    RECALL_CODE_PATTERN,
    RecallCreate,
    RecallPublic,
    RecallsPublic,
    RecallUpdate,
    WarrantyTermsIn,
    WarrantyTermsListPublic,
    WarrantyTermsPublic,
)

router = APIRouter(
    prefix="/v1/service",
    tags=["recalls and warranty"],
    responses={401: UNAUTHENTICATED, 403: FORBIDDEN, 422: INVALID_REQUEST},
)
RecallCodePath = Annotated[str, Path(pattern=RECALL_CODE_PATTERN, description="Campaign code")]
BrandPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f/]+$", examples=["Volkswagen"])
]
_RECALL_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown campaign (recall_not_found)"}
}


def _terms_public(terms: WarrantyTerms, updated_at: Any) -> WarrantyTermsPublic:
    return WarrantyTermsPublic(
        brand=terms.brand, years=terms.years, km=terms.km, updated_at=updated_at
    )


@router.get("/recalls", response_model=RecallsPublic, summary="Recall campaigns, by code (admin)")
async def list_recalls(state: State, _: Admin, paging: Paging) -> RecallsPublic:
    records, count = await RecallStore(state.pool).page(limit=paging.limit, offset=paging.offset)
    return RecallsPublic(data=[recall_public(r) for r in records], count=count)


@router.post(
    "/recalls",
    status_code=status.HTTP_201_CREATED,
    response_model=RecallPublic,
    responses={409: {"model": ErrorBody, "description": "Code taken (already_exists)"}},
    summary="Create a recall campaign (admin)",
    description="Affects cars of `brand` (any case), `model` (none: every model), model years "
    "and VIN serials (positions 12-17) within the inclusive ranges given.",
)
async def create_recall(state: State, _: Admin, body: RecallCreate) -> RecallPublic:
    return recall_public(await RecallStore(state.pool).create(body.model_dump(), now=state.now()))


@router.get(
    "/recalls/{recall_code}",
    response_model=RecallPublic,
    responses=_RECALL_404,
    summary="One recall campaign (admin)",
)
async def get_recall(state: State, _: Admin, recall_code: RecallCodePath) -> RecallPublic:
    return recall_public(await RecallStore(state.pool).get(recall_code))


@router.patch(
    "/recalls/{recall_code}",
    response_model=RecallPublic,
    responses=_RECALL_404,
    summary="Change a recall campaign, or end it with `active: false` (admin)",
)
async def patch_recall(
    state: State, _: Admin, recall_code: RecallCodePath, body: RecallUpdate
) -> RecallPublic:
    changes = body.model_dump(exclude_unset=True)
    return recall_public(
        await RecallStore(state.pool).update(recall_code, changes, now=state.now())
    )


@router.get(
    "/warranty-terms",
    response_model=WarrantyTermsListPublic,
    summary="Warranty terms per brand (admin)",
)
async def list_terms(state: State, _: Admin) -> WarrantyTermsListPublic:
    terms = await WarrantyStore(state.pool).list()
    return WarrantyTermsListPublic(data=[_terms_public(t, at) for t, at in terms], count=len(terms))


@router.put(
    "/warranty-terms/{brand}",
    response_model=WarrantyTermsPublic,
    summary="Set a brand's warranty terms (admin)",
    description="Years from first registration and kilometres (none: no mileage limit), "
    "whichever comes first. A brand is matched without case.",
)
async def put_terms(
    state: State, _: Admin, brand: BrandPath, body: WarrantyTermsIn
) -> WarrantyTermsPublic:
    terms, at = await WarrantyStore(state.pool).put(
        brand.strip(), years=body.years, km=body.km, now=state.now()
    )
    return _terms_public(terms, at)


@router.delete(
    "/warranty-terms/{brand}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorBody, "description": "No terms (warranty_terms_not_found)"}},
    summary="Remove a brand's warranty terms (admin)",
)
async def delete_terms(state: State, _: Admin, brand: BrandPath) -> None:
    await WarrantyStore(state.pool).delete(brand.strip())
