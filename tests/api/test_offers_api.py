"""The offers routes through the app: rules (create, versioned edits, lost-update guard,
validation), places (GeoJSON and CSV imports, all or nothing), partners and their keys,
redemption at a partner's till, the customer's offers (opened, clicked) and the KPIs.

Offers come from the real decider: a trigger of the fuel rule at a Star station (``fuel-004``)
is appended to the outbox and the ``offers`` consumer decides on it, as the runtime does."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from api.notifications.notifier import notifier
from api.offers.decider import OfferDecider, offer_decider
from api.offers.seed import seed_offers
from api.offers.store import KPI_CSV_COLUMNS
from api.security.principal import STATIC_ADMIN_SUBJECT
from diagnostics.offers.rules import default_rules
from diagnostics.offers.stream_service import append_trigger
from diagnostics.offers.triggers import Trigger
from tests.api.customer_platform import ADMIN, VIN_A, VIN_B, Platform, running_platform

pytestmark = pytest.mark.integration

VIN_C = "WVWZZZ1JZXW000003"
FUEL_RULE = "fuel-discount-partner"
STAR_STATION = "fuel-004"  # Star Schwabing-West in the shipped Munich places
RULE: dict[str, Any] = {
    "name": "Car wash after a long trip",
    "campaign": "partner-wash",
    "policy": {"cooldown_h": 12, "valid_h": 24},
    "params": {"kind": "low_energy_near_station", "partner_id": "star", "fuel_below_pct": 15},
}
GEOJSON = {"Content-Type": "application/geo+json"}
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool) as running:
        async with pool.acquire() as conn:
            await seed_offers(conn, now=running.clock.now())
        yield running


@dataclass(frozen=True)
class Owner:
    customer_id: str
    vin: str
    headers: dict[str, str]


async def owner(
    platform: Platform, email: str, vin: str, *, marketing: bool = True, location: bool = True
) -> Owner:
    """A customer owning ``vin``, with marketing and location consent as given."""
    customer_id = await platform.customer(email)
    await platform.vehicle(vin)
    await platform.link(vin, customer_id)
    headers = await platform.login(email)
    consents = {"source": "app", "purposes": {"marketing": marketing, "location": location}}
    response = await platform.http.put("/v1/me/consents", json=consents, headers=headers)
    assert response.status_code == 200, response.text
    return Owner(customer_id, vin, headers)


async def trigger(platform: Platform, vin: str, place_id: str = STAR_STATION) -> None:
    """The fuel rule's condition holds for ``vin`` now by ``place_id``; the decider decides."""
    ts_ms = platform.clock.now_ms()
    fired = Trigger(
        rule_id=FUEL_RULE,
        rule_version=1,
        vin=vin,
        ts_ms=ts_ms,
        subject_key=f"place:{place_id}",
        place_id=place_id,
        speed_kmh=30.0,
        details={"place_name": "Star Schwabing-West", "distance_m": 900, "level_pct": 12.0},
    )
    async with platform.pool.acquire() as conn, conn.transaction():
        await append_trigger(conn, fired, detected_at_ms=ts_ms)
    decider = OfferDecider(platform.clock, max_trigger_age_s=None)
    await offer_decider(platform.pool, decider).process_pending()


async def offer_for(platform: Platform, who: Owner) -> dict[str, Any]:
    """Drive one trigger for ``who``'s car and return the offer it got."""
    await trigger(platform, who.vin)
    listing = await platform.http.get("/v1/me/offers", headers=who.headers)
    assert listing.status_code == 200, listing.text
    assert listing.json()["count"] >= 1, "no offer was sent"
    offer: dict[str, Any] = listing.json()["data"][0]
    return offer


async def partner_key(platform: Platform, partner_id: str = "star") -> str:
    """A fresh key of a (seeded) partner."""
    response = await platform.http.post(f"/v1/offers/partners/{partner_id}/key", headers=ADMIN)
    assert response.status_code == 200, response.text
    key: str = response.json()["api_key"]
    return key


async def redeem(platform: Platform, code: str, key: str | None, **extra: Any) -> httpx.Response:
    headers = {} if key is None else {"X-Partner-Key": key}
    return await platform.http.post(
        "/v1/offers/redeem", json={"code": code, **extra}, headers=headers
    )


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["code"]
    return code


# -- rules ------------------------------------------------------------------------------------


async def test_the_default_rules_are_listed_at_version_one(platform: Platform) -> None:
    response = await platform.http.get("/v1/offers/rules", headers=ADMIN)
    assert response.status_code == 200
    rules = response.json()["data"]
    assert len(rules) == 6
    assert {r["id"] for r in rules} == {rule_id for rule_id, _ in default_rules()}
    assert {r["version"] for r in rules} == {1}
    fuel = next(r for r in rules if r["id"] == FUEL_RULE)
    assert fuel["params"]["kind"] == "low_energy_near_station"
    assert fuel["params"]["partner_id"] == "star"
    assert fuel["campaign"] == "partner-fuel"


async def test_a_rule_is_created_once(platform: Platform) -> None:
    http = platform.http
    created = await http.post("/v1/offers/rules", json={"id": "wash", **RULE}, headers=ADMIN)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["id"], body["version"], body["enabled"]) == ("wash", 1, True)
    assert body["params"]["fuel_below_pct"] == 15
    assert body["params"]["max_distance_km"] == 3.0  # the kind's defaults filled in
    again = await http.post("/v1/offers/rules", json={"id": "wash", **RULE}, headers=ADMIN)
    assert again.status_code == 409
    assert error_code(again) == "offer_rule_exists"
    fetched = await http.get("/v1/offers/rules/wash", headers=ADMIN)
    assert fetched.json() == body


async def test_editing_writes_the_next_version_and_keeps_the_old_ones(
    platform: Platform,
) -> None:
    http = platform.http
    await http.post("/v1/offers/rules", json={"id": "wash", **RULE}, headers=ADMIN)
    platform.clock.advance(timedelta(minutes=1))
    edited = {**RULE, "name": "Car wash, edited", "enabled": False}
    updated = await http.put("/v1/offers/rules/wash", json=edited, headers=ADMIN)
    assert updated.status_code == 200, updated.text
    assert (updated.json()["version"], updated.json()["enabled"]) == (2, False)
    current = (await http.get("/v1/offers/rules/wash", headers=ADMIN)).json()
    assert (current["version"], current["name"]) == (2, "Car wash, edited")

    versions = await http.get("/v1/offers/rules/wash/versions", headers=ADMIN)
    assert versions.status_code == 200
    data = versions.json()["data"]
    assert [v["rule"]["version"] for v in data] == [2, 1]
    assert [v["rule"]["name"] for v in data] == ["Car wash, edited", RULE["name"]]
    assert {v["created_by"] for v in data} == {STATIC_ADMIN_SUBJECT}
    assert datetime.fromisoformat(data[0]["created_at"]) > datetime.fromisoformat(
        data[1]["created_at"]
    )


async def test_an_edit_on_a_stale_version_is_refused(platform: Platform) -> None:
    http = platform.http
    first = await http.put(
        f"/v1/offers/rules/{FUEL_RULE}",
        json={**RULE, "name": "First", "expected_version": 1},
        headers=ADMIN,
    )
    assert first.status_code == 200
    assert first.json()["version"] == 2
    # A second editor who also loaded version 1 would overwrite the first edit unseen.
    stale = await http.put(
        f"/v1/offers/rules/{FUEL_RULE}",
        json={**RULE, "name": "Second", "expected_version": 1},
        headers=ADMIN,
    )
    assert stale.status_code == 409
    assert error_code(stale) == "offer_rule_version_conflict"
    current = (await http.get(f"/v1/offers/rules/{FUEL_RULE}", headers=ADMIN)).json()
    assert (current["version"], current["name"]) == (2, "First")
    reloaded = await http.put(
        f"/v1/offers/rules/{FUEL_RULE}",
        json={**RULE, "name": "Second", "expected_version": 2},
        headers=ADMIN,
    )
    assert reloaded.json()["version"] == 3


async def test_an_unknown_rule_is_not_found(platform: Platform) -> None:
    http = platform.http
    for method, path, body in (
        ("GET", "/v1/offers/rules/no-such-rule", None),
        ("GET", "/v1/offers/rules/no-such-rule/versions", None),
        ("PUT", "/v1/offers/rules/no-such-rule", RULE),
    ):
        response = await http.request(method, path, json=body, headers=ADMIN)
        assert response.status_code == 404, (method, path, response.text)
        assert error_code(response) == "not_found"


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """RULE with one field (by path) set to ``value``."""
    rule: dict[str, Any] = {**RULE, "params": dict(RULE["params"])}
    target = rule
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return {"id": "bad-rule", **rule}


@pytest.mark.parametrize(
    "body",
    [
        _with(("params", "max_distance_km"), -1),
        _with(("params", "max_distance_km"), 0),
        _with(("params", "kind"), "free_lunch"),
        _with(("params", "partner_id"), "Not A Partner!"),
        _with(("params", "colour"), "red"),
        _with(("colour",), "red"),
        _with(("policy",), {"cooldown_h": -1}),
        _with(("policy",), {"valid_h": 0}),
        _with(("id",), "X"),
        _with(("name",), ""),
    ],
    ids=[
        "negative distance",
        "zero distance",
        "unknown kind",
        "bad partner id",
        "extra param",
        "extra field",
        "negative cooldown",
        "zero validity",
        "bad id",
        "empty name",
    ],
)
async def test_invalid_rules_are_refused(platform: Platform, body: dict[str, Any]) -> None:
    created = await platform.http.post("/v1/offers/rules", json=body, headers=ADMIN)
    assert created.status_code == 422, created.text
    assert error_code(created) == "invalid_request"
    update = {k: v for k, v in body.items() if k != "id"}
    if body["id"] == "bad-rule":  # the same body is no better as an edit
        edited = await platform.http.put(
            f"/v1/offers/rules/{FUEL_RULE}", json=update, headers=ADMIN
        )
        assert edited.status_code == 422, edited.text
    rules = (await platform.http.get("/v1/offers/rules", headers=ADMIN)).json()["data"]
    assert len(rules) == 6
    assert {r["version"] for r in rules} == {1}


# -- places -----------------------------------------------------------------------------------


async def places(platform: Platform, kind: str) -> dict[str, dict[str, Any]]:
    response = await platform.http.get(
        "/v1/offers/places", params={"kind": kind, "limit": 500}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    assert response.json()["count"] == len(response.json()["data"])
    return {p["id"]: p for p in response.json()["data"]}


FORECOURT = [[11.50, 48.10], [11.51, 48.10], [11.51, 48.11], [11.50, 48.11], [11.50, 48.10]]


async def test_a_geojson_import_creates_circles_and_polygons(platform: Platform) -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "new-fuel-1",
                "geometry": {"type": "Point", "coordinates": [11.57, 48.14]},
                "properties": {
                    "kind": "fuel_station",
                    "name": "New Star",
                    "brand": "Star",
                    "partner_id": "star",
                    "radius_m": 200,
                },
            },
            {
                "type": "Feature",
                "id": "new-dealer-1",
                "geometry": {"type": "Polygon", "coordinates": [FORECOURT]},
                "properties": {"kind": "dealer", "name": "New Dealer"},
            },
        ],
    }
    response = await platform.http.post(
        "/v1/offers/places", json=collection, headers={**ADMIN, **GEOJSON}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"imported": 2}

    fuel = await places(platform, "fuel_station")
    assert fuel["new-fuel-1"] == {
        "id": "new-fuel-1",
        "kind": "fuel_station",
        "name": "New Star",
        "brand": "Star",
        "partner_id": "star",
        "geometry": {"type": "Point", "coordinates": [11.57, 48.14]},
        "radius_m": 200.0,
    }
    assert STAR_STATION in fuel  # the seeded ones are still there
    dealers = await places(platform, "dealer")
    dealer = dealers["new-dealer-1"]
    assert dealer["geometry"] == {"type": "Polygon", "coordinates": [FORECOURT]}
    assert dealer["radius_m"] is None
    assert "new-dealer-1" not in fuel
    assert "new-fuel-1" not in dealers


async def test_plain_json_is_geojson_too_and_an_import_replaces_by_id(
    platform: Platform,
) -> None:
    feature = {
        "type": "Feature",
        "id": STAR_STATION,
        "geometry": {"type": "Point", "coordinates": [11.5607, 48.1481]},
        "properties": {"kind": "fuel_station", "name": "Star renamed", "partner_id": "star"},
    }
    response = await platform.http.post("/v1/offers/places", json=feature, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() == {"imported": 1}
    assert (await places(platform, "fuel_station"))[STAR_STATION]["name"] == "Star renamed"


async def test_a_csv_import(platform: Platform) -> None:
    text = (
        "id,kind,name,lat,lon,radius_m,brand,partner_id,wkt\n"
        "csv-charge-1,charging_station,SWM Test,48.13,11.55,80,SWM,swm,\n"
        "csv-fuel-1,fuel_station,Aral Test,48.14,11.56,,Aral,,\n"
        '"csv-centre-1",service_centre,"Werkstatt, Süd",,,,,,'
        '"POLYGON((11.50 48.10, 11.51 48.10, 11.51 48.11, 11.50 48.10))"\n'
    )
    response = await platform.http.post(
        "/v1/offers/places", content=text.encode(), headers={**ADMIN, **CSV}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"imported": 3}
    charger = (await places(platform, "charging_station"))["csv-charge-1"]
    assert (charger["partner_id"], charger["radius_m"], charger["brand"]) == ("swm", 80.0, "SWM")
    assert charger["geometry"]["coordinates"] == [11.55, 48.13]
    fuel = (await places(platform, "fuel_station"))["csv-fuel-1"]
    assert (fuel["partner_id"], fuel["radius_m"]) == (None, 150.0)  # the default radius
    centre = (await places(platform, "service_centre"))["csv-centre-1"]
    assert centre["name"] == "Werkstatt, Süd"
    assert centre["geometry"]["type"] == "Polygon"


async def test_a_bad_csv_row_refuses_the_whole_import_naming_its_line(
    platform: Platform,
) -> None:
    text = (
        "id,kind,name,lat,lon\n"
        "csv-ok-1,fuel_station,Fine,48.14,11.56\n"
        "csv-bad-1,fuel_station,Broken,north,11.56\n"
    )
    response = await platform.http.post("/v1/offers/places", content=text, headers={**ADMIN, **CSV})
    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_places"
    assert response.json()["message"].startswith("line 3:")
    assert "lat" in response.json()["message"]
    assert "csv-ok-1" not in await places(platform, "fuel_station")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("id,kind,name,lat,lon\nx-1,bakery,Bread,48.1,11.5\n", 2),
        ("id,kind,name,lat,lon\nx-1,fuel_station,A,48.1,11.5\nx-1,fuel_station,B,48.2,11.5\n", 3),
        ("id,kind,name,lat\nx-1,fuel_station,A,48.1\n", 1),
        ("id,kind,name,lat,lon\nx-1,fuel_station,A,95,11.5\n", 2),
        ("id,kind,name,lat,lon\nx-1,fuel_station,A,48.1\n", 2),
    ],
    ids=["unknown kind", "duplicate id", "missing column", "latitude out of range", "short row"],
)
async def test_each_kind_of_bad_csv_is_a_422_with_its_line(
    platform: Platform, text: str, line: int
) -> None:
    response = await platform.http.post("/v1/offers/places", content=text, headers={**ADMIN, **CSV})
    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_places"
    assert response.json()["message"].startswith(f"line {line}:"), response.text


async def test_bad_geojson_is_a_422(platform: Platform) -> None:
    for body in (b"{not json", b'{"type": "Point", "coordinates": [11.5, 48.1]}'):
        response = await platform.http.post(
            "/v1/offers/places", content=body, headers={**ADMIN, **GEOJSON}
        )
        assert response.status_code == 422, response.text
        assert error_code(response) == "invalid_places"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
async def test_places_in_another_format_are_refused(
    platform: Platform, content_type: str | None
) -> None:
    headers = dict(ADMIN) | ({"Content-Type": content_type} if content_type else {})
    response = await platform.http.post(
        "/v1/offers/places", content=b"id,kind,name,lat,lon\n", headers=headers
    )
    assert response.status_code == 415, response.text
    assert error_code(response) == "unsupported_media_type"


# -- partners ---------------------------------------------------------------------------------


async def test_a_partner_gets_its_key_once(platform: Platform) -> None:
    http = platform.http
    body = {"id": "acme-wash", "name": "ACME car wash"}
    created = await http.post("/v1/offers/partners", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "acme-wash"
    assert created.json()["name"] == "ACME car wash"
    key = created.json()["api_key"]
    assert key.startswith("flp_") and len(key) > 40
    again = await http.post("/v1/offers/partners", json=body, headers=ADMIN)
    assert again.status_code == 409
    assert error_code(again) == "offer_partner_exists"
    assert "api_key" not in again.json()
    # Only the hash is stored.
    stored = await platform.pool.fetchval(
        "SELECT key_hash FROM offer_partners WHERE id = 'acme-wash'"
    )
    assert key.encode() not in bytes(stored)
    # The key works: an unknown code is a 404, not a 401.
    response = await redeem(platform, "FL-0000-0000", key)
    assert response.status_code == 404


async def test_a_rotated_key_replaces_the_old_one_at_once(platform: Platform) -> None:
    http = platform.http
    created = await http.post(
        "/v1/offers/partners", json={"id": "acme-wash", "name": "ACME"}, headers=ADMIN
    )
    old = created.json()["api_key"]
    rotated = await http.post("/v1/offers/partners/acme-wash/key", headers=ADMIN)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["id"] == "acme-wash"
    assert rotated.json()["name"] == "ACME"
    new = rotated.json()["api_key"]
    assert new != old
    refused = await redeem(platform, "FL-0000-0000", old)
    assert refused.status_code == 401
    assert error_code(refused) == "invalid_partner_key"
    assert (await redeem(platform, "FL-0000-0000", new)).status_code == 404
    unknown = await http.post("/v1/offers/partners/no-such-partner/key", headers=ADMIN)
    assert unknown.status_code == 404


async def test_invalid_partners_are_refused(platform: Platform) -> None:
    for body in ({"id": "X", "name": "x"}, {"id": "acme", "name": ""}, {"id": "acme"}):
        response = await platform.http.post("/v1/offers/partners", json=body, headers=ADMIN)
        assert response.status_code == 422, body


# -- redemption -------------------------------------------------------------------------------


async def test_a_partner_redeems_its_code_once(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    offer = await offer_for(platform, ada)
    assert offer["partner_id"] == "star"
    assert offer["place_id"] == STAR_STATION
    assert offer["rule_id"] == FUEL_RULE
    assert offer["category"] == "promotion"
    assert offer["title"].startswith("10 ct/l at ")
    code = offer["code"]
    star = await partner_key(platform)
    other = (
        await platform.http.post(
            "/v1/offers/partners", json={"id": "acme-wash", "name": "ACME"}, headers=ADMIN
        )
    ).json()["api_key"]

    missing = await redeem(platform, code, None)
    assert missing.status_code == 401
    assert error_code(missing) == "invalid_partner_key"
    assert missing.headers["WWW-Authenticate"] == 'PartnerKey realm="FleetLink offers"'
    assert (await redeem(platform, code, "flp_" + "x" * 43)).status_code == 401
    # A bearer token is no partner key, not even the admin's.
    admin = await platform.http.post("/v1/offers/redeem", json={"code": code}, headers=ADMIN)
    assert admin.status_code == 401
    # Another partner does not learn that the code exists.
    foreign = await redeem(platform, code, other)
    assert foreign.status_code == 404
    assert error_code(foreign) == "not_found"

    platform.clock.advance(timedelta(minutes=10))
    redeemed = await redeem(platform, code, star)
    assert redeemed.status_code == 200, redeemed.text
    body = redeemed.json()
    assert body["code"] == offer["code"]
    assert datetime.fromisoformat(body["redeemed_at"]) == platform.clock.now()
    assert body["place_id"] == STAR_STATION  # the offer's station by default
    # The till learns what the code is worth, nothing about the car or the customer.
    assert body.keys() == {"code", "title", "discount", "place_id", "expires_at", "redeemed_at"}
    assert body["discount"] == "10 ct/l"

    platform.clock.advance(timedelta(minutes=1))
    again = await redeem(platform, code, star)
    assert again.status_code == 409
    assert error_code(again) == "offer_already_redeemed"
    mine = (await platform.http.get("/v1/me/offers", headers=ada.headers)).json()["data"]
    assert mine[0]["redeemed_at"] == body["redeemed_at"]


@pytest.mark.parametrize(
    "typed",
    [
        lambda code: code.lower(),
        lambda code: code.replace("-", ""),
        lambda code: code.lower().replace("-", "").removeprefix("fl"),
        lambda code: " ".join(code.split("-")),
    ],
    ids=["lower case", "no dashes", "no prefix", "spaces"],
)
async def test_a_code_is_accepted_as_a_cashier_types_it(platform: Platform, typed: Any) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    offer = await offer_for(platform, ada)
    response = await redeem(platform, typed(offer["code"]), await partner_key(platform))
    assert response.status_code == 200, (typed(offer["code"]), response.text)
    assert response.json()["code"] == offer["code"]


async def test_a_code_is_redeemed_where_the_till_says(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    offer = await offer_for(platform, ada)
    response = await redeem(
        platform, offer["code"], await partner_key(platform), place_id="fuel-009"
    )
    assert response.status_code == 200, response.text
    assert response.json()["place_id"] == "fuel-009"


async def test_an_expired_code_is_gone(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    offer = await offer_for(platform, ada)
    expires_at = datetime.fromisoformat(offer["expires_at"])
    # The fuel rule's codes are valid for 4 hours.
    assert expires_at - datetime.fromisoformat(offer["triggered_at"]) == timedelta(hours=4)
    star = await partner_key(platform)
    platform.clock.advance(expires_at - platform.clock.now())
    expired = await redeem(platform, offer["code"], star)
    assert expired.status_code == 410, expired.text
    assert error_code(expired) == "offer_expired"
    headers = await platform.login("ada@example.com")  # the old access token has expired
    mine = (await platform.http.get("/v1/me/offers", headers=headers)).json()["data"]
    assert mine[0]["redeemed_at"] is None


async def test_a_code_just_before_its_expiry_is_redeemed(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    offer = await offer_for(platform, ada)
    expires_at = datetime.fromisoformat(offer["expires_at"])
    platform.clock.advance(expires_at - platform.clock.now() - timedelta(seconds=1))
    response = await redeem(platform, offer["code"], await partner_key(platform))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("code", ["", "abc", "x" * 33])
async def test_a_malformed_code_is_a_422(platform: Platform, code: str) -> None:
    response = await redeem(platform, code, await partner_key(platform))
    assert response.status_code == 422


# -- the customer's offers --------------------------------------------------------------------


async def test_a_customer_sees_only_their_own_offers(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    bob = await owner(platform, "bob@example.com", VIN_B)
    offer = await offer_for(platform, ada)
    mine = (await platform.http.get("/v1/me/offers", headers=ada.headers)).json()
    assert mine["count"] == 1
    assert [o["id"] for o in mine["data"]] == [offer["id"]]
    assert offer["vin"] == VIN_A
    assert offer["code"].startswith("FL-")
    assert (offer["opened_at"], offer["clicked_at"], offer["redeemed_at"]) == (None, None, None)
    theirs = (await platform.http.get("/v1/me/offers", headers=bob.headers)).json()
    assert theirs == {"data": [], "count": 0}


async def test_opened_and_clicked_are_recorded_the_first_time(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    bob = await owner(platform, "bob@example.com", VIN_B)
    offer = await offer_for(platform, ada)
    path = f"/v1/me/offers/{offer['id']}"

    platform.clock.advance(timedelta(minutes=1))
    opened_at = platform.clock.now()
    opened = await platform.http.post(f"{path}/opened", headers=ada.headers)
    assert opened.status_code == 200, opened.text
    assert datetime.fromisoformat(opened.json()["opened_at"]) == opened_at
    assert opened.json()["clicked_at"] is None

    platform.clock.advance(timedelta(minutes=1))
    clicked_at = platform.clock.now()
    clicked = await platform.http.post(f"{path}/clicked", headers=ada.headers)
    assert clicked.status_code == 200, clicked.text
    assert datetime.fromisoformat(clicked.json()["clicked_at"]) == clicked_at
    assert datetime.fromisoformat(clicked.json()["opened_at"]) == opened_at  # the first time

    platform.clock.advance(timedelta(minutes=1))
    again = await platform.http.post(f"{path}/opened", headers=ada.headers)
    assert again.json()["opened_at"] == opened.json()["opened_at"]
    assert again.json()["clicked_at"] == clicked.json()["clicked_at"]

    # Another customer's offer looks unknown, and is left as it was.
    for action in ("opened", "clicked"):
        foreign = await platform.http.post(f"{path}/{action}", headers=bob.headers)
        assert foreign.status_code == 404
        assert error_code(foreign) == "not_found"
    unknown = await platform.http.post(f"/v1/me/offers/{uuid4()}/opened", headers=ada.headers)
    assert unknown.status_code == 404
    bad_action = await platform.http.post(f"{path}/redeemed", headers=ada.headers)
    assert bad_action.status_code == 422


async def test_clicking_an_unopened_offer_opens_it(platform: Platform) -> None:
    ada = await owner(platform, "ada@example.com", VIN_A)
    offer = await offer_for(platform, ada)
    platform.clock.advance(timedelta(minutes=1))
    clicked = await platform.http.post(f"/v1/me/offers/{offer['id']}/clicked", headers=ada.headers)
    assert clicked.status_code == 200, clicked.text
    assert clicked.json()["opened_at"] == clicked.json()["clicked_at"]
    assert datetime.fromisoformat(clicked.json()["clicked_at"]) == platform.clock.now()


async def test_a_customer_without_marketing_consent_gets_no_promotion(
    platform: Platform,
) -> None:
    carl = await owner(platform, "carl@example.com", VIN_C, marketing=False)
    await trigger(platform, carl.vin)
    mine = (await platform.http.get("/v1/me/offers", headers=carl.headers)).json()
    assert mine["count"] == 0
    reason = await platform.pool.fetchval(
        "SELECT reason FROM offer_decisions WHERE vin = $1", carl.vin
    )
    assert reason == "no_marketing_consent"


# -- KPIs -------------------------------------------------------------------------------------


async def kpi_world(platform: Platform) -> datetime:
    """Ada gets an offer, opens and clicks it and redeems it; Carl, without marketing consent,
    is suppressed. Returns when it started."""
    start = platform.clock.now()
    ada = await owner(platform, "ada@example.com", VIN_A)
    carl = await owner(platform, "carl@example.com", VIN_C, marketing=False)
    offer = await offer_for(platform, ada)
    await trigger(platform, carl.vin)
    # The app is told (the notifier), a second later.
    platform.clock.advance(timedelta(seconds=1))
    await notifier(platform.pool, platform.clock).process_pending()
    platform.clock.advance(timedelta(minutes=1))
    for action in ("opened", "clicked"):
        response = await platform.http.post(
            f"/v1/me/offers/{offer['id']}/{action}", headers=ada.headers
        )
        assert response.status_code == 200
    assert (await redeem(platform, offer["code"], await partner_key(platform))).status_code == 200
    platform.clock.advance(timedelta(minutes=1))
    return start


async def test_the_kpis_count_each_step_of_the_funnel(platform: Platform) -> None:
    await kpi_world(platform)
    response = await platform.http.get(
        "/v1/offers/kpis", params={"rule_id": FUEL_RULE}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert datetime.fromisoformat(body["end"]) == platform.clock.now()
    assert datetime.fromisoformat(body["start"]) == platform.clock.now() - timedelta(days=30)
    (kpi,) = body["data"]
    p50 = kpi.pop("trigger_to_delivery_p50_s")
    p99 = kpi.pop("trigger_to_delivery_p99_s")
    assert kpi == {
        "rule_id": FUEL_RULE,
        "campaign": "partner-fuel",
        "eligible": 2,
        "suppressed": {"no_marketing_consent": 1},
        "sent": 1,
        "opened": 1,
        "clicked": 1,
        "redeemed": 1,
        "conversion_rate": 1.0,
    }
    # Detected at the trigger, delivered to the app by the notifier a second later.
    assert p50 == p99 == pytest.approx(1.0, abs=0.01)


async def test_the_kpis_filter_by_rule_campaign_and_range(platform: Platform) -> None:
    start = await kpi_world(platform)
    http = platform.http
    everything = (await http.get("/v1/offers/kpis", headers=ADMIN)).json()["data"]
    assert [k["rule_id"] for k in everything] == [FUEL_RULE]
    by_campaign = await http.get(
        "/v1/offers/kpis", params={"campaign": "partner-fuel"}, headers=ADMIN
    )
    assert [k["rule_id"] for k in by_campaign.json()["data"]] == [FUEL_RULE]
    for params in ({"rule_id": "contract-renewal"}, {"campaign": "renewals"}):
        assert (await http.get("/v1/offers/kpis", params=params, headers=ADMIN)).json()[
            "data"
        ] == [], params
    before = {"start": (start - timedelta(days=2)).isoformat(), "end": start.isoformat()}
    assert (await http.get("/v1/offers/kpis", params=before, headers=ADMIN)).json()["data"] == []


async def test_the_kpis_as_csv(platform: Platform) -> None:
    await kpi_world(platform)
    response = await platform.http.get(
        "/v1/offers/kpis", params={"format": "csv", "rule_id": FUEL_RULE}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    lines = response.text.splitlines()
    assert lines[0] == ",".join(KPI_CSV_COLUMNS)
    (row,) = list(csv.DictReader(io.StringIO(response.text)))
    assert row["rule_id"] == FUEL_RULE
    assert row["campaign"] == "partner-fuel"
    counts = ("eligible", "sent", "opened", "clicked", "redeemed")
    assert [row[c] for c in counts] == ["2", "1", "1", "1", "1"]
    assert float(row["conversion_rate"]) == 1.0
    assert row["suppressed"] == "no_marketing_consent=1"


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-11-20T00:00:00Z", "end": "2026-11-10T00:00:00Z"},
        {"start": "2026-11-10T00:00:00Z", "end": "2026-11-10T00:00:00Z"},
        {"start": "2024-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"start": "yesterday"},
        {"format": "xlsx"},
    ],
    ids=["start after end", "empty range", "over a year", "not a time", "unknown format"],
)
async def test_a_bad_kpi_query_is_a_422(platform: Platform, params: dict[str, str]) -> None:
    response = await platform.http.get("/v1/offers/kpis", params=params, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_request"


# -- input PostgreSQL cannot store is a 422, not a 500 ------------------------------------------


async def test_place_names_the_database_cannot_hold_are_refused(platform: Platform) -> None:
    for name in ("x" * 201, "Star\x00"):
        text = f"id,kind,name,lat,lon\ncsv-odd-1,fuel_station,{name},48.14,11.56\n"
        response = await platform.http.post(
            "/v1/offers/places", content=text.encode(), headers={**ADMIN, **CSV}
        )
        assert response.status_code == 422, response.text
        assert error_code(response) == "invalid_places"
        assert "csv-odd-1" in response.json()["message"]
    feature = {
        "type": "Feature",
        "id": "odd-1",
        "geometry": {"type": "Point", "coordinates": [11.5, 48.1]},
        "properties": {"kind": "fuel_station", "name": "Star", "brand": "St\u0000ar"},
    }
    response = await platform.http.post("/v1/offers/places", json=feature, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_places"
    assert "odd-1" not in await places(platform, "fuel_station")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/offers/rules", {"id": "nul-rule", **RULE, "name": "Wash\x00"}),
        ("PUT", f"/v1/offers/rules/{FUEL_RULE}", {**RULE, "name": "Wash\x00"}),
        (
            "POST",
            "/v1/offers/rules",
            {"id": "nul-rule", **RULE, "params": {**RULE["params"], "discount": "10\x00"}},
        ),
        ("POST", "/v1/offers/partners", {"id": "nul-partner", "name": "ACME\x00"}),
    ],
    ids=["rule name", "edited rule name", "discount", "partner name"],
)
async def test_nul_characters_in_names_are_refused(
    platform: Platform, method: str, path: str, body: dict[str, Any]
) -> None:
    response = await platform.http.request(method, path, json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert error_code(response) == "invalid_request"


async def test_nul_characters_in_a_code_or_campaign_are_refused(platform: Platform) -> None:
    star = await partner_key(platform)
    response = await redeem(platform, "FL-0000-000\x00", star)
    assert response.status_code == 422, response.text
    kpis = await platform.http.get(
        "/v1/offers/kpis", params={"campaign": "partner\x00"}, headers=ADMIN
    )
    assert kpis.status_code == 422, kpis.text
