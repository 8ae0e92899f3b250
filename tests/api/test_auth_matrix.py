"""Authorisation matrix: every route of the application x every kind of caller.

The routes come from the application itself, so a route added without a row here fails
``test_the_matrix_covers_every_route``. Path parameters always name customer A's objects. A's
car has bookings at centre Y, so centre Y sees the car (its state, events and alerts) and acts
on those bookings, while centre X, like customer B, gets 404 (never 403, which would reveal that
the object exists) wherever the route serves its role at all.

The world (customers, clients, centres, bookings, a work order, an alert and its notification,
an OTA repository with a published image, an entitlement, the offers' seed data and an offer to
A) is built once per module into a template database; each row runs against its own clone, so
a row's changes never leak into the next.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.app import create_app
from api.notifications.notifier import notifier
from api.offers.decider import OfferDecider, offer_decider
from api.offers.seed import seed_offers
from api.security.principal import Principal
from api.security.tokens import issue_access_token
from api.settings import ApiSettings
from api.vehicle_registry import Ecu, VehicleRegistry, VehicleSpec
from diagnostics.alert_store import AlertStore
from diagnostics.findings import AlertType, Finding, Severity
from diagnostics.lifecycle import Source
from diagnostics.offers.stream_service import append_trigger
from diagnostics.offers.triggers import Trigger
from fleetlink.embedded_postgres import EmbeddedPostgres
from ota.campaigns.updates import apply
from ota.ceremony import initialize, offline_directory, online_directory
from ota.director import Director
from ota.director_ceremony import initialize_director, online_director_directory
from ota.policy import KeyPolicy, RoleKeys
from ota.service import OtaService
from ota.settings import OtaSettings
from ota.status_machine import UpdateStatus
from protocol.catalogue import Powertrain
from protocol.vin import Vin
from tests.api.customer_platform import (
    ADMIN,
    ADMIN_TOKEN,
    CHEAP_HASHING,
    NO_BROKER,
    VIN_A,
    VIN_B,
    FakeClock,
    Platform,
    bearer,
)

# The session's migrated template database (tests/conftest.py).
MIGRATED_TEMPLATE = "fleetlink_template"
# {n}: the caller's number, so that two admins creating something do not collide.
NEW_VIN = "WVWZZZ1JZXW00010{n}"
# Not authorisation questions: liveness, Prometheus scraping, and where tokens come from.
PUBLIC = {"/healthz", "/metrics", "/v1/auth/token"}
CALLERS = (
    "none",
    "expired",
    "tampered",
    "B",
    "centre_x",
    "centre_y",
    "A",
    "admin_jwt",
    "admin_token",
)
SIGNED_IN = ("A", "B", "centre_x", "centre_y", "admin_jwt", "admin_token")
OCTETS = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    # Expected status per caller; callers not named (none, expired, tampered) expect 401.
    expect: dict[str, int]
    body: dict[str, Any] | None = None
    query: str = ""
    # Path placeholders filled from another of the world's ids, e.g. {"booking_id":
    # "confirmed_id"}: the same route needs A's object in a particular state.
    alias: dict[str, str] = field(default_factory=dict)
    # A raw body (artifact uploads) and the headers it needs.
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # What a 401 asks for.
    challenge: str = "Bearer"


def self_route(method: str, path: str, ok: int = 200, **kw: Any) -> Row:
    """A /v1/me route: every customer reaches their own data; other roles are refused."""
    expect = {"A": ok, "B": ok} | dict.fromkeys(("centre_x", "centre_y"), 403)
    return Row(method, path, expect | dict.fromkeys(("admin_jwt", "admin_token"), 403), **kw)


def own_route(method: str, path: str, **kw: Any) -> Row:
    """A /v1/me route naming one of A's objects: B gets 404, other roles are refused."""
    expect = {"A": 200, "B": 404} | dict.fromkeys(("centre_x", "centre_y"), 403)
    return Row(method, path, expect | dict.fromkeys(("admin_jwt", "admin_token"), 403), **kw)


def admin_route(
    method: str, path: str, ok: int = 200, *, again: int | None = None, **kw: Any
) -> Row:
    """For fleet administrators only; the second admin gets ``again`` (the first one's change
    already made) if given."""
    expect = dict.fromkeys(("A", "B", "centre_x", "centre_y"), 403)
    expect |= {"admin_jwt": ok, "admin_token": ok if again is None else again}
    return Row(method, path, expect, **kw)


def vehicle_route(method: str, path: str, *, owner: int = 200, centre: int = 200, **kw: Any) -> Row:
    """Data of A's car: A (status ``owner``), centre Y (booked there: ``centre``) and admins
    see it; B and centre X get 404."""
    expect = {"A": owner, "B": 404, "centre_x": 404, "centre_y": centre}
    return Row(method, path, expect | {"admin_jwt": 200, "admin_token": 200}, **kw)


def customer_route(method: str, path: str, **kw: Any) -> Row:
    """A's profile: A and admins; nobody else learns that it exists."""
    expect = {"A": 200, "B": 404, "centre_x": 404, "centre_y": 404}
    return Row(method, path, expect | {"admin_jwt": 200, "admin_token": 200}, **kw)


def everyone_route(method: str, path: str, **kw: Any) -> Row:
    """For every signed-in caller (reference data, or lists filtered to what they may see)."""
    return Row(method, path, dict.fromkeys(SIGNED_IN, 200), **kw)


def public_route(method: str, path: str, **kw: Any) -> Row:
    """No authentication at all, whatever the caller sends (TUF files: signed, so who fetches
    them does not matter, and cars fetch before they could present anything)."""
    return Row(method, path, dict.fromkeys(CALLERS, 200), **kw)


def staff_route(
    method: str,
    path: str,
    *,
    ok: int = 200,
    centre: int | None = None,
    again: int | None = None,
    **kw: Any,
) -> Row:
    """A service-side route on A's booking at centre Y: customers are refused (403), centre X
    does not see it (404). Centre Y, which acts first, gets ``centre`` (default ``ok``); the
    admins get ``ok``, or ``again`` once the change is made (by centre Y when it may make
    it, else by the first admin)."""
    by_centre = ok if centre is None else centre
    first_admin = ok if again is None or by_centre != ok else again
    expect = dict.fromkeys(("A", "B"), 403) | {"centre_x": 404, "centre_y": by_centre}
    expect |= {"admin_jwt": first_admin, "admin_token": ok if again is None else again}
    return Row(method, path, expect, **kw)


def centres_route(method: str, path: str, **kw: Any) -> Row:
    """Lists for service centres (their own bookings and work orders) and admins."""
    expect = dict.fromkeys(("A", "B"), 403) | dict.fromkeys(("centre_x", "centre_y"), 200)
    return Row(method, path, expect | {"admin_jwt": 200, "admin_token": 200}, **kw)


NEW_LINE = {
    "kind": "part",
    "code": "P-{n}",
    "description": "Part",
    "quantity": "1",
    "unit_price_cents": 100,
}
UPLOAD_QUERY = "?name=matrix-fw&version=2.{n}.0&hardware_id=MATRIX-H1&release_counter=2"
HARDWARE_ID = "MATRIX-H1"
TARGET = "matrix-fw-1.0.0"
OWNER_INFO = {"purpose": "Fixes for the telematics unit", "duration_min": 5}
CAMPAIGNS = "/v1/ota/campaigns/{campaign_id}"
# Any 32 bytes will do for the route: it stores the key, the car's reports prove it.
ECU_KEY = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
OFFER_RULE = {
    "name": "Matrix {n}",
    "campaign": "matrix",
    "params": {"kind": "low_energy_near_station", "partner_id": "star"},
}
NEW_PLACES = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": "matrix-{n}",
            "geometry": {"type": "Point", "coordinates": [11.5, 48.1]},
            "properties": {"kind": "fuel_station", "name": "Matrix {n}"},
        }
    ],
}


MATRIX = [
    self_route("GET", "/v1/me"),
    self_route("PATCH", "/v1/me", body={"language": "de"}),
    self_route("DELETE", "/v1/me"),
    self_route("GET", "/v1/me/consents"),
    self_route("PUT", "/v1/me/consents", body={"source": "app", "purposes": {"location": True}}),
    self_route("GET", "/v1/me/vehicles"),
    self_route("GET", "/v1/me/overview"),
    self_route("GET", "/v1/me/export"),
    self_route("GET", "/v1/me/notifications"),
    # follow=false: the replay, then the stream ends (a followed stream never would).
    self_route("GET", "/v1/me/notifications/stream", query="?follow=false"),
    own_route("GET", "/v1/me/notifications/{notification_id}"),
    own_route("POST", "/v1/me/notifications/{notification_id}/read"),
    Row(
        "GET",
        "/v1/me/vehicles/{vin}/telemetry",
        {"A": 200, "B": 404}
        | dict.fromkeys(("centre_x", "centre_y", "admin_jwt", "admin_token"), 403),
        query="?signals=Vehicle.Speed",
    ),
    admin_route(
        "POST",
        "/v1/auth/clients",
        201,
        body={
            "client_id": "sc-new-{n}",
            "name": "New",
            "role": "service_center",
            "centres": ["c9"],
        },
    ),
    admin_route("POST", "/v1/auth/clients/{client_id}/disable"),
    admin_route("POST", "/v1/customers", 201, body={"email": "new{n}@example.com"}),
    admin_route("GET", "/v1/customers"),
    customer_route("GET", "/v1/customers/{customer_id}"),
    customer_route("GET", "/v1/customers/{customer_id}/overview"),
    everyone_route("GET", "/v1/vehicles"),
    # Registry and connection details are operations data: those who see the car get 403.
    vehicle_route("GET", "/v1/vehicles/{vin}", owner=403, centre=403),
    vehicle_route("GET", "/v1/vehicles/{vin}/state"),
    vehicle_route("GET", "/v1/vehicles/{vin}/events"),
    vehicle_route("GET", "/v1/vehicles/{vin}/alerts"),
    everyone_route("GET", "/v1/alerts"),
    vehicle_route("POST", "/v1/alerts/{alert_id}/ack"),
    admin_route("GET", "/v1/vehicles/{vin}/telemetry", query="?signals=Vehicle.Speed"),
    admin_route("PUT", "/v1/vehicles/{vin}/owner", body={"customer_id": "{b_id}"}),
    # The second admin finds the owner already unlinked by the first (vehicle_has_no_owner).
    admin_route("DELETE", "/v1/vehicles/{vin}/owner", again=404),
    admin_route("GET", "/v1/vehicles/{vin}/ownership"),
    admin_route(
        "POST",
        "/v1/vehicles",
        201,
        body={
            "vin": NEW_VIN,
            "brand": "VW",
            "model": "Golf",
            "model_year": 2024,
            "powertrain": "ice",
        },
    ),
    admin_route("POST", "/v1/vehicles/{vin}/credentials/rotate"),
    admin_route("POST", "/v1/vehicles/{vin}/revoke"),
    # 503: authorised, but this API has no fleet CA configured.
    admin_route("POST", "/v1/vehicles/{vin}/certificates", 503, body={}),
    # Entitlements: the owner lists them; centres never (403 before any lookup); admins grant
    # and revoke (revoking twice is idempotent).
    Row(
        "GET",
        "/v1/vehicles/{vin}/entitlements",
        {
            "A": 200,
            "B": 404,
            "centre_x": 403,
            "centre_y": 403,
            "admin_jwt": 200,
            "admin_token": 200,
        },
    ),
    admin_route(
        "POST", "/v1/vehicles/{vin}/entitlements", 201, body={"feature": "f{n}", "kind": "purchase"}
    ),
    admin_route("DELETE", "/v1/vehicles/{vin}/entitlements/{entitlement_id}"),
    # OTA artifacts (admins) and the TUF image repository (public).
    admin_route(
        "POST", "/v1/ota/artifacts", 201, query=UPLOAD_QUERY, content=b"image {n}", headers=OCTETS
    ),
    admin_route("GET", "/v1/ota/artifacts"),
    admin_route("GET", "/v1/ota/artifacts/{artifact_id}"),
    admin_route("POST", "/v1/ota/artifacts/{artifact_id}/publish"),
    public_route("GET", "/ota/image/{filename}", alias={"filename": "metadata_file"}),
    public_route("GET", "/ota/image/targets/{filename}", alias={"filename": "target_file"}),
    public_route("HEAD", "/ota/image/targets/{filename}", alias={"filename": "target_file"}),
    # The director's metadata says what one car installs: the car itself (HTTP Basic, not a
    # matrix caller) or the static admin token; bearer tokens of other kinds are not enough,
    # and the challenge asks for the car's credentials.
    Row(
        "GET",
        "/ota/director/{vin}/{filename}",
        {"admin_token": 200} | dict.fromkeys(SIGNED_IN[:-1], 401),
        alias={"filename": "metadata_file"},
        challenge='Basic realm="FleetLink director"',
    ),
    # OTA campaigns: administrators; the owner answers an offer to their car (B: 404 as for a
    # car without one); the installed software is vehicle data like its state.
    admin_route(
        "POST",
        "/v1/ota/campaigns",
        201,
        body={
            "name": "Campaign {n}",
            "target": TARGET,
            "owner_info": OWNER_INFO,
            "targeting": {"vins": [VIN_B]},
        },
    ),
    admin_route("GET", "/v1/ota/campaigns"),
    admin_route("GET", CAMPAIGNS),
    admin_route("POST", CAMPAIGNS + "/pause", again=409),
    admin_route("POST", CAMPAIGNS + "/resume", again=409, alias={"campaign_id": "paused_id"}),
    admin_route("POST", CAMPAIGNS + "/cancel", again=409),
    admin_route("GET", CAMPAIGNS + "/vehicles"),
    admin_route("GET", CAMPAIGNS + "/vehicles/{vin}"),
    # Retrying the failed update twice is one retry (it is assigned again).
    admin_route("POST", CAMPAIGNS + "/vehicles/{vin}/retry", alias={"campaign_id": "paused_id"}),
    own_route("POST", "/v1/me/vehicles/{vin}/ota/{campaign_id}/accept"),
    own_route("POST", "/v1/me/vehicles/{vin}/ota/{campaign_id}/decline"),
    vehicle_route("GET", "/v1/vehicles/{vin}/software"),
    admin_route("PUT", "/v1/vehicles/{vin}/ota/ecu-key", body={"public_key": ECU_KEY}),
    # The service network. A's bookings are at centre Y: centre X sees none of them.
    everyone_route("GET", "/v1/service/centres"),
    everyone_route("GET", "/v1/service/centres/{centre_id}"),
    everyone_route("GET", "/v1/service/vans"),
    everyone_route("GET", "/v1/service/vans/{van_id}"),
    everyone_route("GET", "/v1/service/slots", query="?lat=48.137&lon=11.576"),
    admin_route(
        "POST",
        "/v1/service/centres",
        201,
        body={
            "id": "new-{n}",
            "name": "New",
            "address": "Munich",
            "lat": 48.1,
            "lon": 11.5,
            "bays": 1,
        },
    ),
    admin_route("PATCH", "/v1/service/centres/{centre_id}", body={"bays": 3}),
    admin_route(
        "POST",
        "/v1/service/vans",
        201,
        body={"id": "van-{n}", "name": "Van", "home_centre_id": "centre-y", "range_km": 20},
    ),
    admin_route("PATCH", "/v1/service/vans/{van_id}", body={"range_km": 30}),
    self_route("GET", "/v1/me/bookings"),
    # B may not book A's car (404); centres and admins do not use /v1/me.
    Row(
        "POST",
        "/v1/me/bookings",
        {"A": 201, "B": 404}
        | dict.fromkeys(("centre_x", "centre_y", "admin_jwt", "admin_token"), 403),
        body={"vin": "{vin}", "centre_id": "centre-y", "slot_start": "{slot}"},
    ),
    own_route("GET", "/v1/me/bookings/{booking_id}"),
    own_route("POST", "/v1/me/bookings/{booking_id}/confirm"),
    own_route("POST", "/v1/me/bookings/{booking_id}/cancel"),
    own_route(
        "GET", "/v1/me/bookings/{booking_id}/work-order", alias={"booking_id": "wo_booking_id"}
    ),
    centres_route("GET", "/v1/service/bookings"),
    # Centre Y books a follow-up for the car it sees; then the car is booked at that time.
    staff_route(
        "POST",
        "/v1/service/bookings",
        ok=201,
        again=409,
        body={"vin": "{vin}", "centre_id": "centre-y", "slot_start": "{slot}"},
    ),
    staff_route("GET", "/v1/service/bookings/{booking_id}"),
    # Confirming is the customer's (or an admin's) step, never a centre's.
    staff_route("POST", "/v1/service/bookings/{booking_id}/confirm", centre=403, again=409),
    staff_route(
        "POST",
        "/v1/service/bookings/{booking_id}/check-in",
        again=409,
        alias={"booking_id": "confirmed_id"},
    ),
    staff_route(
        "POST",
        "/v1/service/bookings/{booking_id}/complete",
        again=409,
        alias={"booking_id": "checked_in_id"},
    ),
    staff_route("POST", "/v1/service/bookings/{booking_id}/cancel", centre=403, again=409),
    # A centre records a no-show only once the slot has started (tomorrow): 409.
    staff_route("POST", "/v1/service/bookings/{booking_id}/no-show", centre=409, again=409),
    staff_route(
        "POST",
        "/v1/service/bookings/{booking_id}/work-order",
        ok=201,
        again=409,
        body={"complaint": "Noise"},
        alias={"booking_id": "checked_in_id"},
    ),
    centres_route("GET", "/v1/service/work-orders"),
    staff_route("GET", "/v1/service/work-orders/{work_order_id}"),
    staff_route("POST", "/v1/service/work-orders/{work_order_id}/lines", ok=201, body=NEW_LINE),
    staff_route("DELETE", "/v1/service/work-orders/{work_order_id}/lines/{line_id}", again=404),
    staff_route("POST", "/v1/service/work-orders/{work_order_id}/close", again=409),
    admin_route("GET", "/v1/service/recalls"),
    admin_route(
        "POST",
        "/v1/service/recalls",
        201,
        body={"code": "RC-NEW-{n}", "title": "Recall", "brand": "VW", "remedy": "Fix"},
    ),
    admin_route("GET", "/v1/service/recalls/{recall_code}"),
    admin_route("PATCH", "/v1/service/recalls/{recall_code}", body={"active": False}),
    admin_route("GET", "/v1/service/warranty-terms"),
    admin_route("PUT", "/v1/service/warranty-terms/{brand}", body={"years": 3, "km": 100000}),
    admin_route("DELETE", "/v1/service/warranty-terms/{brand}", 204, again=404),
    # Offers: rules, places, partners and KPIs are administration; the rule is a default one,
    # the partner one of the seeded partners.
    admin_route("GET", "/v1/offers/rules"),
    admin_route("POST", "/v1/offers/rules", 201, body={"id": "matrix-rule-{n}", **OFFER_RULE}),
    admin_route("GET", "/v1/offers/rules/{rule_id}"),
    # Without expected_version: each admin writes the next version.
    admin_route("PUT", "/v1/offers/rules/{rule_id}", body=OFFER_RULE),
    admin_route("GET", "/v1/offers/rules/{rule_id}/versions"),
    admin_route("GET", "/v1/offers/places"),
    # A JSON body (application/json) is GeoJSON to this route.
    admin_route("POST", "/v1/offers/places", body=NEW_PLACES),
    admin_route("POST", "/v1/offers/partners", 201, body={"id": "partner-{n}", "name": "P {n}"}),
    admin_route("POST", "/v1/offers/partners/{partner_id}/key"),
    admin_route("GET", "/v1/offers/kpis"),
    self_route("GET", "/v1/me/offers"),
    own_route("POST", "/v1/me/offers/{offer_id}/{action}"),
    # Redemption is the partner's till (X-Partner-Key, not a matrix caller): bearer tokens of
    # any kind are not enough, even with A's own code, and the challenge asks for the key.
    Row(
        "POST",
        "/v1/offers/redeem",
        dict.fromkeys(SIGNED_IN, 401),
        body={"code": "{offer_code}"},
        challenge='PartnerKey realm="FleetLink offers"',
    ),
]


# -- the world ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldTemplate:
    """What every row starts from: a database to clone, the OTA data directory to copy, the
    callers' headers, the world's ids and the time it was built at."""

    database: str
    ota_dir: Path
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]
    clock_ms: int


@dataclass
class World:
    platform: Platform
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]


def tampered(token: str) -> str:
    """The same token with its payload edited to claim fleet_admin; signature unchanged."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "fleet_admin"
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


@asynccontextmanager
async def serving(pool: asyncpg.Pool, clock: FakeClock, ota_dir: Path) -> AsyncIterator[Platform]:
    """The API with OTA enabled (its repository in ``ota_dir``) on ``pool``."""
    app = create_app(
        ApiSettings(admin_token=ADMIN_TOKEN, **CHEAP_HASHING),
        mqtt=NO_BROKER,
        database=pool,
        clock=clock,
        ota=OtaService(pool, OtaSettings(data_dir=ota_dir)),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("192.0.2.10", 40000)),
            base_url="http://fleetlink.test",
        ) as http,
    ):
        yield Platform(http, pool, clock, app)


async def _admin(server: EmbeddedPostgres, statement: str) -> None:
    conn = await asyncpg.connect(server.dsn("postgres"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def world_template(
    postgres_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorldTemplate]:
    name = f"matrix_{uuid.uuid4().hex[:12]}"
    base = tmp_path_factory.mktemp("matrix-world")
    asyncio.run(_admin(postgres_server, f"CREATE DATABASE {name} TEMPLATE {MIGRATED_TEMPLATE}"))
    try:
        template = asyncio.run(_build_world(postgres_server.dsn(name), name, base))
        yield template
    finally:
        asyncio.run(_admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _build_world(dsn: str, name: str, base: Path) -> WorldTemplate:
    ota_dir = base / "ota"
    clock = FakeClock()
    pool: asyncpg.Pool = await asyncpg.create_pool(dsn, min_size=1, max_size=5)
    try:
        settings = OtaSettings(data_dir=ota_dir)
        await initialize(
            OtaService(pool, settings).repository,
            online_directory(settings.keys_dir),
            offline_directory(base / "offline-root"),
            KeyPolicy.from_settings(settings, root=RoleKeys(1, 1)),
            datetime.now(UTC).replace(microsecond=0),
        )
        async with serving(pool, clock, ota_dir) as platform:
            headers, ids = await _populate(platform)
    finally:
        await pool.close()  # a template database takes no connections
    return WorldTemplate(name, ota_dir, headers, ids, clock.ms)


async def _populate(platform: Platform) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    pool = platform.pool
    a_id = await platform.customer("a@example.com")
    b_id = await platform.customer("b@example.com")
    # A's car has an ECU the OTA campaigns target.
    ecu = Ecu("TCU-000001", HARDWARE_ID, "0.9.0")
    await VehicleRegistry(pool).register(
        VehicleSpec(Vin(VIN_A), "VW", "ID.3", 2024, Powertrain.BEV, (ecu,))
    )
    await platform.vehicle(VIN_B)
    await platform.link(VIN_A, a_id)
    await platform.link(VIN_B, b_id)
    a = await platform.login("a@example.com")
    expired = issue_access_token(
        Principal.customer(UUID(a_id)),
        key=ApiSettings(admin_token=ADMIN_TOKEN).jwt_signing_key,
        now=platform.clock.now() - timedelta(hours=2),
        ttl=timedelta(minutes=15),
    )
    headers = {
        "none": {},
        "expired": bearer(expired.token),
        "tampered": bearer(tampered(a["Authorization"].removeprefix("Bearer "))),
        "A": a,
        "B": await platform.login("b@example.com"),
        "centre_x": await platform.client("sc-x", "service_center", ["centre-x"]),
        "centre_y": await platform.client("sc-y", "service_center", ["centre-y"]),
        "admin_jwt": await platform.client("ops-tool", "fleet_admin", []),
        "admin_token": ADMIN,
    }
    await platform.client("sc-victim", "service_center", ["centre-y"])
    ids = {"customer_id": a_id, "b_id": b_id, **await _service_network(platform, a)}
    # Centre Y sees the car's data from its bookings on: the alert comes a minute later.
    platform.clock.advance(timedelta(minutes=1))
    ids["alert_id"] = str(await _alert_on(pool, VIN_A, platform.clock.now()))
    # The notifier tells A about that alert (and the bookings): A's notifications.
    await notifier(pool, platform.clock).process_pending()
    ids["notification_id"] = str(
        await pool.fetchval("SELECT min(id) FROM notifications WHERE customer_id = $1", UUID(a_id))
    )
    ids |= await _ota(platform)
    ids |= await _offers(platform, a)
    return headers, ids


async def _service_network(platform: Platform, a: dict[str, str]) -> dict[str, str]:
    """Centres X and Y, a van, a recall and warranty terms, and A's bookings at centre Y (so
    that centre X must not see them): requested, confirmed, checked in, and checked in with an
    open work order and a line."""

    hours = [{"weekday": d, "opens": "08:00", "closes": "18:00"} for d in range(1, 8)]
    for centre_id in ("centre-x", "centre-y"):
        centre = {
            "id": centre_id,
            "name": centre_id,
            "address": "Munich",
            "lat": 48.137,
            "lon": 11.576,
            "bays": 2,
            "opening_hours": hours,
        }
        await _ok(platform, "POST", "/v1/service/centres", ADMIN, centre)
    van = {"id": "van-y", "name": "Van", "home_centre_id": "centre-y", "range_km": 20}
    await _ok(platform, "POST", "/v1/service/vans", ADMIN, van)
    recall = {"code": "RC-1", "title": "Recall", "brand": "VW", "remedy": "Fix"}
    await _ok(platform, "POST", "/v1/service/recalls", ADMIN, recall)
    await _ok(platform, "PUT", "/v1/service/warranty-terms/VW", ADMIN, {"years": 2})
    berlin = ZoneInfo("Europe/Berlin")
    tomorrow = platform.clock.now().astimezone(berlin).date() + timedelta(days=1)

    def slot(hour: int) -> str:
        return datetime.combine(tomorrow, time(hour), berlin).isoformat()

    async def booking(hour: int, *steps: str) -> str:
        body = {"vin": VIN_A, "centre_id": "centre-y", "slot_start": slot(hour)}
        booking_id = (await _ok(platform, "POST", "/v1/me/bookings", a, body))["id"]
        for step in steps:
            await _ok(platform, "POST", f"/v1/service/bookings/{booking_id}/{step}", ADMIN)
        return str(booking_id)

    wo_booking = await booking(13, "confirm", "check-in")
    work_order = await _ok(
        platform,
        "POST",
        f"/v1/service/bookings/{wo_booking}/work-order",
        ADMIN,
        {"complaint": "Noise"},
    )
    line = {
        "kind": "part",
        "code": "P",
        "description": "Part",
        "quantity": "1",
        "unit_price_cents": 1,
    }
    with_line = await _ok(
        platform, "POST", f"/v1/service/work-orders/{work_order['id']}/lines", ADMIN, line
    )
    return {
        "centre_id": "centre-y",
        "van_id": "van-y",
        "recall_code": "RC-1",
        "brand": "VW",
        "slot": slot(15),
        "booking_id": await booking(10),
        "confirmed_id": await booking(11, "confirm"),
        "checked_in_id": await booking(12, "confirm", "check-in"),
        "wo_booking_id": wo_booking,
        "work_order_id": str(work_order["id"]),
        "line_id": str(with_line["parts"][0]["id"]),
    }


async def _ota(platform: Platform) -> dict[str, str]:
    """A published image (its metadata and target files), the director, two campaigns for A's
    car (one offered to A; one failed there and paused), and an entitlement of A's car."""
    uploaded = await platform.http.post(
        "/v1/ota/artifacts",
        params={"name": "matrix-fw", "version": "1.0.0", "hardware_id": HARDWARE_ID}
        | {"release_counter": 1},
        content=b"the image",
        headers={**ADMIN, **OCTETS},
    )
    assert uploaded.status_code == 201, uploaded.text
    artifact_id = uploaded.json()["id"]
    published = await _ok(platform, "POST", f"/v1/ota/artifacts/{artifact_id}/publish", ADMIN)
    entitlement = await _ok(
        platform,
        "POST",
        f"/v1/vehicles/{VIN_A}/entitlements",
        ADMIN,
        {"feature": "heated_seats", "kind": "purchase"},
    )
    return {
        **await _campaigns(platform),
        "artifact_id": artifact_id,
        "metadata_file": "1.root.json",
        "target_file": published["download_path"].rsplit("/", 1)[1],
        "entitlement_id": str(entitlement["id"]),
    }


async def _campaigns(platform: Platform) -> dict[str, str]:
    ota = platform.app.state.fleetlink.ota
    director = Director.from_settings(platform.pool, ota.settings)
    single = RoleKeys(1, 1)
    await initialize_director(
        director,
        online_director_directory(director.keys.path),
        offline_directory(ota.settings.data_dir.parent / "director-root"),
        KeyPolicy(single, single, single, single),
        datetime.now(UTC).replace(microsecond=0),
    )
    ids: dict[str, str] = {}
    # One update in flight per car: the failed one first.
    for name, steps in (
        ("paused_id", (UpdateStatus.OFFERED, UpdateStatus.FAILED)),
        ("campaign_id", (UpdateStatus.OFFERED,)),
    ):
        body = {"name": name, "target": TARGET, "owner_info": OWNER_INFO}
        body["targeting"] = {"vins": [VIN_A]}
        campaign = await _ok(platform, "POST", "/v1/ota/campaigns", ADMIN, body)
        assert campaign["vehicles"] == 1, campaign
        async with platform.pool.acquire() as conn, conn.transaction():
            for step in steps:
                await apply(conn, UUID(campaign["id"]), VIN_A, step, platform.clock.now())
        ids[name] = campaign["id"]
    await _ok(platform, "POST", f"/v1/ota/campaigns/{ids['paused_id']}/pause", ADMIN)
    return ids


async def _offers(platform: Platform, a: dict[str, str]) -> dict[str, str]:
    """The offers' seed data (places, partners, default rules) and an offer to A: A consents to
    marketing and location, and A's car, low on charge, stops by an SWM charger."""
    now = platform.clock.now()
    async with platform.pool.acquire() as conn:
        await seed_offers(conn, now=now)
    consents = {"source": "app", "purposes": {"marketing": True, "location": True}}
    await _ok(platform, "PUT", "/v1/me/consents", a, consents)
    trigger = Trigger(
        rule_id="charging-discount-partner",
        rule_version=1,
        vin=VIN_A,
        ts_ms=platform.clock.now_ms(),
        subject_key="place:charge-003",
        place_id="charge-003",
        speed_kmh=0.0,
        details={"place_name": "SWM Westend", "distance_m": 800, "level_pct": 12.0},
    )
    async with platform.pool.acquire() as conn, conn.transaction():
        await append_trigger(conn, trigger, detected_at_ms=trigger.ts_ms)
    decider = OfferDecider(platform.clock, max_trigger_age_s=None)
    await offer_decider(platform.pool, decider).process_pending()
    offer = await platform.pool.fetchrow("SELECT id, code FROM offers WHERE vin = $1", VIN_A)
    assert offer is not None, decider.stats
    return {
        "rule_id": "fuel-discount-partner",
        "partner_id": "star",
        "offer_id": str(offer["id"]),
        "offer_code": offer["code"],
        # Not an object but the route's last segment: what A does with the offer.
        "action": "clicked",
    }


async def _ok(
    platform: Platform, method: str, path: str, headers: dict[str, str], body: Any = None
) -> Any:
    response = await platform.http.request(method, path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _alert_on(pool: asyncpg.Pool, vin: str, now: datetime) -> int:
    finding = Finding(
        vin, AlertType.SERVICE_DUE, "", Severity.INFO, now, "Book the yearly service."
    )
    changes = await AlertStore(pool).apply(Source.STREAM, [finding], now=now)
    return changes.opened[0].id


@pytest.fixture
async def world(
    world_template: WorldTemplate, postgres_server: EmbeddedPostgres, tmp_path: Path
) -> AsyncIterator[World]:
    """The world as built, in a database and an OTA directory of this test's own."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    await _admin(postgres_server, f"CREATE DATABASE {name} TEMPLATE {world_template.database}")
    ota_dir = tmp_path / "ota"
    shutil.copytree(world_template.ota_dir, ota_dir)
    try:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            postgres_server.dsn(name), min_size=1, max_size=5
        )
        try:
            clock = FakeClock(world_template.clock_ms)
            async with serving(pool, clock, ota_dir) as platform:
                yield World(platform, world_template.headers, dict(world_template.ids))
        finally:
            await pool.close()
    finally:
        await _admin(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fill(text: str, ids: dict[str, str]) -> str:
    text = text.replace("{vin}", VIN_A).replace("{client_id}", "sc-victim")
    for name, value in ids.items():
        text = text.replace("{" + name + "}", value)
    return text


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.path}")
async def test_route_answers_each_caller_as_the_policy_says(world: World, row: Row) -> None:
    ids = {**world.ids, **{name: world.ids[other] for name, other in row.alias.items()}}
    got: dict[str, int] = {}
    # Callers refused by authentication or role first, so a mutation by a caller that gets
    # through cannot change what they see; the others in CALLERS order.
    for caller in sorted(CALLERS, key=lambda c: row.expect.get(c, 401) not in (401, 403)):
        number = str(CALLERS.index(caller))
        url = fill(row.path, ids) + row.query.replace("{n}", number)
        template = json.dumps(row.body).replace("{n}", number)
        body = json.loads(fill(template, ids)) if row.body is not None else None
        content = row.content.replace(b"{n}", number.encode()) if row.content else None
        response = await world.platform.http.request(
            row.method,
            url,
            json=body,
            content=content,
            headers={**world.headers[caller], **row.headers},
        )
        got[caller] = response.status_code
        if response.status_code >= 400 and row.method != "HEAD":
            assert set(response.json()) >= {"code", "message"}, response.text
        if response.status_code == 401:
            assert response.headers["WWW-Authenticate"] == row.challenge
    expected = {caller: row.expect.get(caller, 401) for caller in CALLERS}
    assert got == expected


def test_the_matrix_covers_every_route() -> None:
    app = create_app(ApiSettings(admin_token=ADMIN_TOKEN), mqtt=NO_BROKER, database=_no_pool)
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path not in PUBLIC
        for method in operations
    }
    rows = [(row.method, row.path) for row in MATRIX]
    assert len(rows) == len(set(rows)), "a route has two rows"
    assert routes == set(rows)


async def _no_pool() -> asyncpg.Pool:
    raise AssertionError("the lifespan is not started here")


@pytest.mark.integration
async def test_another_customers_vehicle_looks_exactly_like_an_unknown_one(world: World) -> None:
    http = world.platform.http
    for caller in ("B", "centre_x"):
        foreign = await http.get(f"/v1/vehicles/{VIN_A}/state", headers=world.headers[caller])
        unknown = await http.get(
            "/v1/vehicles/1HGCM82633A004352/state", headers=world.headers[caller]
        )
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json()["code"] == unknown.json()["code"] == "not_found"
        assert foreign.json()["message"].replace(VIN_A, "X") == unknown.json()["message"].replace(
            "1HGCM82633A004352", "X"
        )


@pytest.mark.integration
async def test_each_caller_lists_only_the_vehicles_it_may_see(world: World) -> None:
    http = world.platform.http
    for caller, vins in (
        ("A", [VIN_A]),
        ("B", [VIN_B]),
        ("centre_x", []),
        ("centre_y", [VIN_A]),
        ("admin_jwt", [VIN_A, VIN_B]),
    ):
        listing = (await http.get("/v1/vehicles", headers=world.headers[caller])).json()
        assert [v["vin"] for v in listing["data"]] == vins, caller
        assert listing["count"] == len(vins)


@pytest.mark.integration
async def test_the_booked_centre_sees_the_car_s_alert_and_the_other_centre_none(
    world: World,
) -> None:
    http = world.platform.http
    for caller, alert_ids in (("centre_y", [int(world.ids["alert_id"])]), ("centre_x", [])):
        listing = (await http.get("/v1/alerts", headers=world.headers[caller])).json()
        assert [a["id"] for a in listing["data"]] == alert_ids, caller


@pytest.mark.integration
async def test_a_disabled_client_loses_access_at_once(world: World) -> None:
    http = world.platform.http
    assert (await http.get("/v1/vehicles", headers=world.headers["centre_x"])).status_code == 200
    await http.post("/v1/auth/clients/sc-x/disable", headers=ADMIN)
    assert (await http.get("/v1/vehicles", headers=world.headers["centre_x"])).status_code == 401
