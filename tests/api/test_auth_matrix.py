"""Authorisation matrix: every authenticated route x every kind of caller.

The routes come from the application itself, so a route added without a row here fails
``test_the_matrix_covers_every_route``. Path parameters always name customer A's objects; B
and the service centre must get 404 for them (never 403, which would reveal that they exist)
wherever the route serves their role at all.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from api.notifications.notifier import notifier
from api.security.principal import Principal
from api.security.tokens import issue_access_token
from api.settings import ApiSettings
from diagnostics.alert_store import AlertStore
from diagnostics.findings import AlertType, Finding, Severity
from diagnostics.lifecycle import Source
from tests.api.customer_platform import (
    ADMIN,
    ADMIN_TOKEN,
    VIN_A,
    VIN_B,
    Platform,
    bearer,
    running_platform,
)

# {n}: the caller's number, so that two admins creating something do not collide.
NEW_VIN = "WVWZZZ1JZXW00010{n}"
PUBLIC = {
    "/healthz",
    "/metrics",
    "/v1/auth/token",
    # Vehicle credentials (HTTP Basic), not bearer tokens: tests/ota/test_director_http.py.
    "/ota/director/{vin}/{filename}",
}
CALLERS = ("none", "expired", "tampered", "B", "centre", "A", "admin_jwt", "admin_token")


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


def self_route(method: str, path: str, ok: int = 200, **kw: Any) -> Row:
    """A /v1/me route: every customer reaches their own data; other roles are refused."""
    expect = {"A": ok, "B": ok, "centre": 403, "admin_jwt": 403, "admin_token": 403}
    return Row(method, path, expect, **kw)


def own_route(method: str, path: str, **kw: Any) -> Row:
    """A /v1/me route naming one of A's objects: B gets 404, other roles are refused."""
    expect = {"A": 200, "B": 404, "centre": 403, "admin_jwt": 403, "admin_token": 403}
    return Row(method, path, expect, **kw)


def admin_route(method: str, path: str, ok: int = 200, **kw: Any) -> Row:
    expect = {"A": 403, "B": 403, "centre": 403, "admin_jwt": ok, "admin_token": ok}
    return Row(method, path, expect, **kw)


def object_route(method: str, path: str, *, owner: int = 200, **kw: Any) -> Row:
    """A's object: A (status ``owner``) and admins see it; B and the centre get 404."""
    expect = {"A": owner, "B": 404, "centre": 404, "admin_jwt": 200, "admin_token": 200}
    return Row(method, path, expect, **kw)


def everyone_route(method: str, path: str, **kw: Any) -> Row:
    """Public reference data for every signed-in caller (service centres, vans, slots)."""
    return Row(
        method, path, dict.fromkeys(("A", "B", "centre", "admin_jwt", "admin_token"), 200), **kw
    )


def staff_route(
    method: str, path: str, *, admin: int = 200, again: int | None = None, **kw: Any
) -> Row:
    """A service-side route on A's booking at centre Y: customers are refused (403), centre X
    does not see it (404), admins get ``admin``; the second admin ``again`` (the first one's
    change already made)."""
    expect = {"A": 403, "B": 403, "centre": 404, "admin_jwt": admin, "admin_token": again or admin}
    return Row(method, path, expect, **kw)


OTA_INFO = {"purpose": "Fixes", "duration_min": 10}
NEW_LINE = {
    "kind": "part",
    "code": "P-{n}",
    "description": "Part",
    "quantity": "1",
    "unit_price_cents": 100,
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
        {"A": 200, "B": 404, "centre": 403, "admin_jwt": 403, "admin_token": 403},
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
    object_route("GET", "/v1/customers/{customer_id}"),
    object_route("GET", "/v1/customers/{customer_id}/overview"),
    Row(
        "GET", "/v1/vehicles", dict.fromkeys(("A", "B", "centre", "admin_jwt", "admin_token"), 200)
    ),
    object_route("GET", "/v1/vehicles/{vin}", owner=403),
    object_route("GET", "/v1/vehicles/{vin}/state"),
    object_route("GET", "/v1/vehicles/{vin}/events"),
    object_route("GET", "/v1/vehicles/{vin}/alerts"),
    Row("GET", "/v1/alerts", dict.fromkeys(("A", "B", "centre", "admin_jwt", "admin_token"), 200)),
    object_route("POST", "/v1/alerts/{alert_id}/ack"),
    admin_route("GET", "/v1/vehicles/{vin}/telemetry", query="?signals=Vehicle.Speed"),
    admin_route("PUT", "/v1/vehicles/{vin}/owner", body={"customer_id": "{b_id}"}),
    # The second admin finds the owner already unlinked by the first (vehicle_has_no_owner).
    Row(
        "DELETE",
        "/v1/vehicles/{vin}/owner",
        {"A": 403, "B": 403, "centre": 403, "admin_jwt": 200, "admin_token": 404},
    ),
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
    # OTA campaigns (no image is published in this world: creating one is refused with 409;
    # a customer's id stands in for an unknown campaign, which admins are told is not found).
    admin_route(
        "POST",
        "/v1/ota/campaigns",
        409,
        body={"name": "C{n}", "target": "tcu-fw-9.9.9", "owner_info": OTA_INFO},
    ),
    admin_route("GET", "/v1/ota/campaigns"),
    *(
        admin_route(method, path, 404, alias={"campaign_id": "customer_id"})
        for method, path in (
            ("GET", "/v1/ota/campaigns/{campaign_id}"),
            ("POST", "/v1/ota/campaigns/{campaign_id}/pause"),
            ("POST", "/v1/ota/campaigns/{campaign_id}/resume"),
            ("POST", "/v1/ota/campaigns/{campaign_id}/cancel"),
            ("GET", "/v1/ota/campaigns/{campaign_id}/vehicles"),
            ("GET", "/v1/ota/campaigns/{campaign_id}/vehicles/{vin}"),
            ("POST", "/v1/ota/campaigns/{campaign_id}/vehicles/{vin}/retry"),
        )
    ),
    # The owner answers an offer (A has none: 404, as B who does not own the car).
    *(
        Row(
            "POST",
            f"/v1/me/vehicles/{{vin}}/ota/{{campaign_id}}/{answer}",
            {"A": 404, "B": 404, "centre": 403, "admin_jwt": 403, "admin_token": 403},
            alias={"campaign_id": "customer_id"},
        )
        for answer in ("accept", "decline")
    ),
    object_route("GET", "/v1/vehicles/{vin}/software"),
    admin_route("PUT", "/v1/vehicles/{vin}/ota/ecu-key", body={"public_key": "ab" * 32}),
    # The service network. A's bookings are at centre Y: the centre caller (X) sees none.
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
    # B may not book A's car (404); the centre and admins do not use /v1/me.
    Row(
        "POST",
        "/v1/me/bookings",
        {"A": 201, "B": 404, "centre": 403, "admin_jwt": 403, "admin_token": 403},
        body={"vin": "{vin}", "centre_id": "centre-y", "slot_start": "{slot}"},
    ),
    own_route("GET", "/v1/me/bookings/{booking_id}"),
    own_route("POST", "/v1/me/bookings/{booking_id}/confirm"),
    own_route("POST", "/v1/me/bookings/{booking_id}/cancel"),
    own_route(
        "GET", "/v1/me/bookings/{booking_id}/work-order", alias={"booking_id": "wo_booking_id"}
    ),
    Row(
        "GET",
        "/v1/service/bookings",
        {"A": 403, "B": 403, "centre": 200, "admin_jwt": 200, "admin_token": 200},
    ),
    # The centre does not see A's car; the second admin books the car twice at once.
    staff_route(
        "POST",
        "/v1/service/bookings",
        admin=201,
        again=409,
        body={"vin": "{vin}", "centre_id": "centre-y", "slot_start": "{slot}"},
    ),
    staff_route("GET", "/v1/service/bookings/{booking_id}"),
    staff_route("POST", "/v1/service/bookings/{booking_id}/confirm", again=409),
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
    staff_route("POST", "/v1/service/bookings/{booking_id}/cancel", again=409),
    staff_route("POST", "/v1/service/bookings/{booking_id}/no-show", again=409),
    staff_route(
        "POST",
        "/v1/service/bookings/{booking_id}/work-order",
        admin=201,
        again=409,
        body={"complaint": "Noise"},
        alias={"booking_id": "checked_in_id"},
    ),
    Row(
        "GET",
        "/v1/service/work-orders",
        {"A": 403, "B": 403, "centre": 200, "admin_jwt": 200, "admin_token": 200},
    ),
    staff_route("GET", "/v1/service/work-orders/{work_order_id}"),
    staff_route("POST", "/v1/service/work-orders/{work_order_id}/lines", admin=201, body=NEW_LINE),
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
    Row(
        "DELETE",
        "/v1/service/warranty-terms/{brand}",
        {"A": 403, "B": 403, "centre": 403, "admin_jwt": 204, "admin_token": 404},
    ),
    # Feature entitlements: admins grant and revoke (revoking again is idempotent); the owner
    # and admins list; a service centre has no business with them (403 whatever the car).
    admin_route(
        "POST",
        "/v1/vehicles/{vin}/entitlements",
        201,
        body={"feature": "heated_seats", "kind": "purchase"},
    ),
    admin_route("DELETE", "/v1/vehicles/{vin}/entitlements/{entitlement_id}"),
    Row(
        "GET",
        "/v1/vehicles/{vin}/entitlements",
        {"A": 200, "B": 404, "centre": 403, "admin_jwt": 200, "admin_token": 200},
    ),
]


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


@pytest.fixture
async def world(pool: asyncpg.Pool) -> AsyncIterator[World]:
    async with running_platform(pool) as platform:
        a_id = await platform.customer("a@example.com")
        b_id = await platform.customer("b@example.com")
        await platform.vehicle(VIN_A)
        await platform.vehicle(VIN_B)
        await platform.link(VIN_A, a_id)
        await platform.link(VIN_B, b_id)
        a = await platform.login("a@example.com")
        settings = ApiSettings(admin_token=ADMIN_TOKEN)
        expired = issue_access_token(
            Principal.customer(UUID(a_id)),
            key=settings.jwt_signing_key,
            now=platform.clock.now() - timedelta(hours=2),
            ttl=timedelta(minutes=15),
        )
        headers = {
            "none": {},
            "expired": bearer(expired.token),
            "tampered": bearer(tampered(a["Authorization"].removeprefix("Bearer "))),
            "A": a,
            "B": await platform.login("b@example.com"),
            "centre": await platform.client("sc-x", "service_center", ["centre-x"]),
            "admin_jwt": await platform.client("ops-tool", "fleet_admin", []),
            "admin_token": ADMIN,
        }
        await platform.client("sc-victim", "service_center", ["centre-y"])
        alert = await _alert_on(pool, VIN_A, platform.clock.now())
        # The notifier tells A about that alert: A's notification.
        await notifier(pool, platform.clock).process_pending()
        notification = await pool.fetchval("SELECT id FROM notifications")
        ids = {
            "customer_id": a_id,
            "b_id": b_id,
            "alert_id": str(alert),
            "notification_id": str(notification),
            "entitlement_id": await _entitlement_on(platform, VIN_A),
            **await _service_network(platform, a),
        }
        yield World(platform, headers, ids)


async def _service_network(platform: Platform, a: dict[str, str]) -> dict[str, str]:
    """Centres X and Y, a van, a recall and warranty terms, and A's bookings at centre Y (so
    that the centre caller, X, must not see them): requested, confirmed, checked in, and
    checked in with an open work order and a line."""
    http = platform.http

    async def ok(method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
        response = await http.request(method, path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        return response.json()

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
        await ok("POST", "/v1/service/centres", ADMIN, centre)
    van = {"id": "van-y", "name": "Van", "home_centre_id": "centre-y", "range_km": 20}
    await ok("POST", "/v1/service/vans", ADMIN, van)
    recall = {"code": "RC-1", "title": "Recall", "brand": "VW", "remedy": "Fix"}
    await ok("POST", "/v1/service/recalls", ADMIN, recall)
    await ok("PUT", "/v1/service/warranty-terms/VW", ADMIN, {"years": 2})
    berlin = ZoneInfo("Europe/Berlin")
    tomorrow = platform.clock.now().astimezone(berlin).date() + timedelta(days=1)

    def slot(hour: int) -> str:
        return datetime.combine(tomorrow, time(hour), berlin).isoformat()

    async def booking(hour: int, *steps: str) -> str:
        body = {"vin": VIN_A, "centre_id": "centre-y", "slot_start": slot(hour)}
        booking_id = (await ok("POST", "/v1/me/bookings", a, body))["id"]
        for step in steps:
            await ok("POST", f"/v1/service/bookings/{booking_id}/{step}", ADMIN)
        return str(booking_id)

    wo_booking = await booking(13, "confirm", "check-in")
    work_order = await ok(
        "POST", f"/v1/service/bookings/{wo_booking}/work-order", ADMIN, {"complaint": "Noise"}
    )
    line = {
        "kind": "part",
        "code": "P",
        "description": "Part",
        "quantity": "1",
        "unit_price_cents": 1,
    }
    with_line = await ok("POST", f"/v1/service/work-orders/{work_order['id']}/lines", ADMIN, line)
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


async def _entitlement_on(platform: Platform, vin: str) -> str:
    body = {"feature": "adaptive_cruise", "kind": "purchase"}
    response = await platform.http.post(
        f"/v1/vehicles/{vin}/entitlements", json=body, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _alert_on(pool: asyncpg.Pool, vin: str, now: datetime) -> int:
    finding = Finding(
        vin, AlertType.SERVICE_DUE, "", Severity.INFO, now, "Book the yearly service."
    )
    changes = await AlertStore(pool).apply(Source.STREAM, [finding], now=now)
    return changes.opened[0].id


def fill(text: str, ids: dict[str, str]) -> str:
    text = text.replace("{vin}", VIN_A).replace("{client_id}", "sc-victim")
    for name, value in ids.items():
        text = text.replace("{" + name + "}", value)
    return text


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.path}")
async def test_route_answers_each_caller_as_the_policy_says(world: World, row: Row) -> None:
    ids = {**world.ids, **{name: world.ids[other] for name, other in row.alias.items()}}
    url = fill(row.path, ids) + row.query
    got: dict[str, int] = {}
    # Callers refused by authentication or role first, so a mutation by a caller that gets
    # through cannot change what they see; the others in CALLERS order.
    for caller in sorted(CALLERS, key=lambda c: row.expect.get(c, 401) not in (401, 403)):
        template = json.dumps(row.body).replace("{n}", str(CALLERS.index(caller)))
        body = json.loads(fill(template, ids)) if row.body is not None else None
        response = await world.platform.http.request(
            row.method, url, json=body, headers=world.headers[caller]
        )
        got[caller] = response.status_code
        if response.status_code >= 400:
            assert set(response.json()) >= {"code", "message"}, response.text
        if response.status_code == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"
    expected = {caller: row.expect.get(caller, 401) for caller in CALLERS}
    assert got == expected


def test_the_matrix_covers_every_route() -> None:
    from api.app import create_app
    from tests.api.customer_platform import NO_BROKER

    app = create_app(ApiSettings(admin_token=ADMIN_TOKEN), mqtt=NO_BROKER, database=_no_pool)
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path not in PUBLIC
        for method in operations
    }
    assert routes == {(row.method, row.path) for row in MATRIX}


async def _no_pool() -> asyncpg.Pool:
    raise AssertionError("the lifespan is not started here")


async def test_another_customers_vehicle_looks_exactly_like_an_unknown_one(world: World) -> None:
    http, b = world.platform.http, world.headers["B"]
    foreign = await http.get(f"/v1/vehicles/{VIN_A}/state", headers=b)
    unknown = await http.get("/v1/vehicles/1HGCM82633A004352/state", headers=b)
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["code"] == unknown.json()["code"] == "not_found"
    assert foreign.json()["message"].replace(VIN_A, "X") == unknown.json()["message"].replace(
        "1HGCM82633A004352", "X"
    )


async def test_each_customer_lists_only_their_own_vehicles(world: World) -> None:
    http = world.platform.http
    for caller, vins in (
        ("A", [VIN_A]),
        ("B", [VIN_B]),
        ("centre", []),
        ("admin_jwt", [VIN_A, VIN_B]),
    ):
        listing = (await http.get("/v1/vehicles", headers=world.headers[caller])).json()
        assert [v["vin"] for v in listing["data"]] == vins, caller
        assert listing["count"] == len(vins)


async def test_a_disabled_client_loses_access_at_once(world: World) -> None:
    http = world.platform.http
    assert (await http.get("/v1/vehicles", headers=world.headers["centre"])).status_code == 200
    await http.post("/v1/auth/clients/sc-x/disable", headers=ADMIN)
    assert (await http.get("/v1/vehicles", headers=world.headers["centre"])).status_code == 401
