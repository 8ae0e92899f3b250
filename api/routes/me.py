"""The signed-in customer: ``/v1/me`` (profile, consents, vehicles, overview, GDPR export and
erasure). Every route here needs a customer access token; other roles get 403."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import Field

from api.customer_schemas import (
    ConsentRecordPublic,
    ConsentsPublic,
    ConsentStatePublic,
    ConsentUpdate,
    CustomerPublic,
    CustomerUpdate,
    ErasurePublic,
    MyVehiclePublic,
    MyVehiclesPublic,
    OverviewPublic,
    OwnershipPeriodPublic,
    SubscriptionPublic,
    TelemetryLinkPublic,
)
from api.customer_views import (
    consent_record_public,
    consent_state_public,
    customer_public,
    my_vehicle_public,
    overview,
    period_public,
    subscription_public,
)
from api.customers import gdpr
from api.customers.consent import (
    ConsentSource,
    Purpose,
    consent_history,
    current_consents,
    record_consents,
)
from api.customers.garage import OwnedVehicle, owned_vehicles
from api.deps import CurrentCustomer, NoStore, Paging, State
from api.errors import FORBIDDEN, INVALID_REQUEST, UNAUTHENTICATED
from api.notifications.schemas import NotificationPublic, notification_public
from api.routes.alerts import AlertPublic, alert_public
from api.routes.offers import OfferPublic
from api.schemas import ApiModel, ErrorBody
from api.service.schemas import BookingPublic
from api.service.views import booking_public

router = APIRouter(
    prefix="/v1/me",
    tags=["me"],
    responses={401: UNAUTHENTICATED, 403: FORBIDDEN, 422: INVALID_REQUEST},
    dependencies=[NoStore],  # personal data: no shared cache may keep it
)


class OfferDecisionPublic(ApiModel):
    rule_id: str
    rule_version: int
    campaign: str
    vin: str
    subject_key: str = Field(description="What the offer was about: a place, a contract, ...")
    outcome: Literal["sent", "suppressed"]
    reason: str | None
    offer_id: UUID | None
    triggered_at: datetime
    decided_at: datetime


class CustomerExportPublic(ApiModel):
    """Everything FleetLink holds about the customer (GDPR art. 15 and 20). Alerts, bookings and
    notifications in the same shape as their own routes answer."""

    exported_at: datetime
    customer: CustomerPublic
    consents: list[ConsentStatePublic]
    consent_history: list[ConsentRecordPublic] = Field(description="Every record, newest first")
    ownership: list[OwnershipPeriodPublic] = Field(description="Every period, past ones included")
    vehicles: list[MyVehiclePublic]
    subscriptions: list[SubscriptionPublic] = Field(description="All, past vehicles included")
    telemetry: list[TelemetryLinkPublic] = Field(
        description="Telemetry is vehicle data too large to inline: one link per ownership "
        "period of a vehicle still owned"
    )
    events: list[TelemetryLinkPublic] = Field(
        description="The vehicle's events (DTCs, trips, charging) of the same periods, by link"
    )
    alerts: list[AlertPublic] = Field(
        description="Alerts of my vehicles raised while I owned them, past vehicles included; "
        "newest first"
    )
    bookings: list[BookingPublic] = Field(description="All my service bookings, newest slot first")
    offers: list[OfferPublic] = Field(description="Every offer made to me, newest first")
    offer_decisions: list[OfferDecisionPublic] = Field(
        description="Every offer decision about me, sent or not and why; newest first"
    )
    notifications: list[NotificationPublic] = Field(
        description="Every notification sent to me, with its deliveries; newest first"
    )


def _profile_changes(body: CustomerUpdate) -> dict[str, Any]:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if k != "quiet_hours"}
    if "quiet_hours" in body.model_fields_set:
        quiet = body.quiet_hours
        changes["quiet_hours_start"] = quiet.start if quiet else None
        changes["quiet_hours_end"] = quiet.end if quiet else None
    return changes


@router.get("", response_model=CustomerPublic, summary="My profile")
async def get_me(state: State, me: CurrentCustomer) -> CustomerPublic:
    return customer_public(await state.customers.require(me))


@router.patch(
    "",
    response_model=CustomerPublic,
    responses={409: {"model": ErrorBody, "description": "E-mail used by another customer"}},
    summary="Change my profile: contacts, channels, quiet hours, language, time zone",
    description="Only the fields sent change; `null` clears an optional field (phone, "
    "address, quiet_hours).",
)
async def patch_me(state: State, me: CurrentCustomer, body: CustomerUpdate) -> CustomerPublic:
    record = await state.customers.update(me, _profile_changes(body), now=state.now())
    return customer_public(record)


@router.delete(
    "",
    response_model=ErasurePublic,
    summary="Erase me (GDPR art. 17)",
    description="Deletes the profile, consent state, ownership periods, subscriptions and "
    "notifications and unlinks my vehicles, in one transaction; the access token stops working "
    "at once. Consent records are kept anonymised as proof of consent (GDPR art. 7(1)); "
    "bookings and work orders stay as the service centres' records of the car, without me.",
)
async def erase_me(state: State, me: CurrentCustomer) -> ErasurePublic:
    receipt = await gdpr.erase(state.pool, me, state.now())
    return ErasurePublic(
        customer_id=receipt.customer_id,
        erased_at=receipt.erased_at,
        vehicles_unlinked=receipt.vehicles_unlinked,
        consent_records_anonymised=receipt.consent_records_anonymised,
        bookings_anonymised=receipt.bookings_anonymised,
    )


@router.get(
    "/consents",
    response_model=ConsentsPublic,
    summary="My consent per purpose, and the history of changes (paged, newest first)",
)
async def get_consents(state: State, me: CurrentCustomer, paging: Paging) -> ConsentsPublic:
    async with state.pool.acquire() as conn:
        current = await current_consents(conn, me)
        history, count = await consent_history(conn, me, limit=paging.limit, offset=paging.offset)
    return ConsentsPublic(
        current=[consent_state_public(c) for c in current],
        history=[consent_record_public(r) for r in history],
        history_count=count,
    )


@router.put(
    "/consents",
    response_model=ConsentsPublic,
    summary="Grant or withdraw consent for some purposes",
    description="Purposes not named stay as they are. Each change is recorded with its time "
    "and source; a decision equal to the current one records nothing. Withdrawing location "
    "consent stops position storage for my vehicles (ingest listens on the "
    "`vehicle_location_consent` channel).",
)
async def put_consents(
    state: State, me: CurrentCustomer, body: ConsentUpdate, paging: Paging
) -> ConsentsPublic:
    await record_consents(
        state.pool,
        me,
        {Purpose(p): granted for p, granted in body.purposes.items()},
        source=ConsentSource(body.source),
        now=state.now(),
    )
    return await get_consents(state, me, paging)


@router.get(
    "/vehicles",
    response_model=MyVehiclesPublic,
    summary="My vehicles with latest state, subscriptions and active entitlements",
    description="Latest state shows only values sampled since my ownership began.",
)
async def my_vehicles(state: State, me: CurrentCustomer) -> MyVehiclesPublic:
    vehicles = [my_vehicle_public(v) for v in await owned_vehicles(state.pool, me, state.now())]
    return MyVehiclesPublic(data=vehicles, count=len(vehicles))


@router.get(
    "/overview",
    response_model=OverviewPublic,
    summary="My 720-degree view: profile, consents, vehicles, alerts, updates, bookings, ...",
)
async def my_overview(state: State, me: CurrentCustomer) -> OverviewPublic:
    return await overview(state.pool, me, state.now())


@router.get(
    "/export",
    response_model=CustomerExportPublic,
    summary="Everything FleetLink holds about me, as JSON (GDPR art. 15 and 20)",
)
async def export_me(
    state: State,
    me: CurrentCustomer,
    response: Response,
    download: Annotated[bool, Query(description="Ask the browser to save it as a file")] = False,
) -> CustomerExportPublic:
    now = state.now()
    data = await gdpr.collect(state.pool, me, now)
    if download:
        response.headers["Content-Disposition"] = 'attachment; filename="fleetlink-export.json"'
    return CustomerExportPublic(
        exported_at=now,
        customer=customer_public(data.customer),
        consents=[consent_state_public(c) for c in data.consents],
        consent_history=[consent_record_public(r) for r in data.consent_history],
        ownership=[period_public(p) for p in data.ownership],
        vehicles=[my_vehicle_public(v) for v in data.vehicles],
        subscriptions=[subscription_public(s) for s in data.subscriptions],
        telemetry=_period_links(data.vehicles, "/v1/me/vehicles/{vin}/telemetry"),
        events=_period_links(data.vehicles, "/v1/vehicles/{vin}/events"),
        alerts=[alert_public(a) for a in data.alerts],
        bookings=[booking_public(b) for b in data.bookings],
        offers=[OfferPublic.model_validate(o) for o in data.offers],
        offer_decisions=[OfferDecisionPublic.model_validate(d) for d in data.offer_decisions],
        notifications=[notification_public(n) for n in data.notifications],
    )


def _period_links(vehicles: Sequence[OwnedVehicle], href: str) -> list[TelemetryLinkPublic]:
    """One link per vehicle still owned, to its data of the current ownership period."""
    return [
        TelemetryLinkPublic(
            vin=v.vehicle.vin,
            start=v.owned_since,
            end=None,
            href=href.format(vin=v.vehicle.vin),
        )
        for v in vehicles
    ]
