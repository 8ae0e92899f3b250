"""The entitlement routes: grant, revoke and list, with their rules and who may call them; each
change allocates the next document version in its own transaction (also GDPR erasure's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from tests.api.customer_platform import (
    ADMIN,
    VIN_A,
    VIN_B,
    Platform,
    running_platform,
)

URL = f"/v1/vehicles/{VIN_A}/entitlements"


@dataclass
class World:
    platform: Platform
    a: dict[str, str]  # A owns VIN_A
    b: dict[str, str]  # B owns VIN_B
    a_id: str
    centre: dict[str, str]


@pytest.fixture
async def world(pool: asyncpg.Pool) -> AsyncIterator[World]:
    async with running_platform(pool) as platform:
        a_id = await platform.customer("a@example.com")
        b_id = await platform.customer("b@example.com")
        await platform.vehicle(VIN_A)
        await platform.vehicle(VIN_B)
        await platform.link(VIN_A, a_id)
        await platform.link(VIN_B, b_id)
        yield World(
            platform,
            await platform.login("a@example.com"),
            await platform.login("b@example.com"),
            a_id,
            await platform.client("sc-x", "service_center", ["centre-x"]),
        )


async def _grant(world: World, body: dict[str, Any], url: str = URL) -> Any:
    response = await world.platform.http.post(url, json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def _head(pool: asyncpg.Pool, vin: str = VIN_A) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT version, push_requests, pushed_requests FROM ota_entitlement_heads WHERE vin = $1",
        vin,
    )


async def test_a_grant_allocates_the_next_document_version_and_queues_its_push(
    world: World, pool: asyncpg.Pool
) -> None:
    now = world.platform.clock.now()
    until = now + timedelta(days=30)
    granted = await _grant(
        world,
        {"feature": "heated_seats", "kind": "subscription", "valid_until": until.isoformat()},
    )
    assert granted["feature"] == "heated_seats" and granted["kind"] == "subscription"
    assert granted["status"] == "active" and granted["revoked_at"] is None
    assert granted["document_version"] == 1
    second = await _grant(world, {"feature": "adaptive_cruise", "kind": "purchase"})
    assert second["document_version"] == 2 and second["valid_until"] is None
    head = await _head(pool)
    assert head is not None and (head["version"], head["push_requests"]) == (2, 2)

    listing = (await world.platform.http.get(URL, headers=ADMIN)).json()
    assert listing["count"] == 2
    assert [e["feature"] for e in listing["data"]] == ["heated_seats", "adaptive_cruise"]
    assert listing["document"]["version"] == 2
    assert listing["document"]["signed_version"] == 0  # the push service signs


async def test_a_grant_may_start_later(world: World) -> None:
    start = world.platform.clock.now() + timedelta(days=2)
    body = {"feature": "performance_boost", "kind": "purchase", "valid_from": start.isoformat()}
    assert (await _grant(world, body))["status"] == "scheduled"


INVALID_GRANTS: list[tuple[str, dict[str, Any], str]] = [
    ("trial without end", {"feature": "heated_seats", "kind": "trial"}, "entitlement_invalid"),
    (
        "ended",
        {"feature": "heated_seats", "kind": "purchase", "valid_until": "2001-01-01T00:00:00Z"},
        "entitlement_invalid",
    ),
    (
        "ends before start",
        {
            "feature": "heated_seats",
            "kind": "purchase",
            "valid_from": "2100-01-02T00:00:00Z",
            "valid_until": "2100-01-01T00:00:00Z",
        },
        "entitlement_invalid",
    ),
    (
        "purchase with subscription",
        {"feature": "heated_seats", "kind": "purchase", "subscription_id": 1},
        "entitlement_invalid",
    ),
    ("bad name", {"feature": "Heated Seats", "kind": "purchase"}, "invalid_request"),
    ("bad kind", {"feature": "heated_seats", "kind": "lease"}, "invalid_request"),
    (
        "unknown field",
        {"feature": "heated_seats", "kind": "purchase", "price": 5},
        "invalid_request",
    ),
    (
        "naive time",
        {"feature": "heated_seats", "kind": "purchase", "valid_until": "2100-01-01T00:00:00"},
        "invalid_request",
    ),
]


async def test_invalid_grants_are_refused_with_a_code(world: World, pool: asyncpg.Pool) -> None:
    got = {}
    for case, body, _ in INVALID_GRANTS:
        response = await world.platform.http.post(URL, json=body, headers=ADMIN)
        got[case] = (response.status_code, response.json()["code"])
    assert got == {case: (422, code) for case, _, code in INVALID_GRANTS}
    assert await _head(pool) is None  # no version allocated for a refused change


async def test_a_subscription_must_be_the_vehicles_own(world: World, pool: asyncpg.Pool) -> None:
    now = world.platform.clock.now()
    subscription = await pool.fetchval(
        "INSERT INTO subscriptions (customer_id, vin, plan, status, started_at)"
        " VALUES ($1, $2, 'comfort', 'active', $3) RETURNING id",
        world.a_id,
        VIN_A,
        now,
    )
    body = {"feature": "heated_seats", "kind": "subscription", "subscription_id": subscription}
    assert (await _grant(world, body))["subscription_id"] == subscription
    response = await world.platform.http.post(
        f"/v1/vehicles/{VIN_B}/entitlements", json=body, headers=ADMIN
    )
    assert (response.status_code, response.json()["code"]) == (422, "entitlement_invalid")


async def test_an_unknown_vehicle_is_404(world: World) -> None:
    response = await world.platform.http.post(
        "/v1/vehicles/1HGCM82633A004352/entitlements",
        json={"feature": "heated_seats", "kind": "purchase"},
        headers=ADMIN,
    )
    assert response.status_code == 404


async def test_revocation_is_a_new_version_and_idempotent(world: World, pool: asyncpg.Pool) -> None:
    granted = await _grant(world, {"feature": "heated_seats", "kind": "purchase"})
    http = world.platform.http
    world.platform.clock.advance(timedelta(minutes=5))
    revoked = await http.delete(f"{URL}/{granted['id']}", headers=ADMIN)
    assert revoked.status_code == 200
    body = revoked.json()
    assert body["status"] == "revoked" and body["document_version"] == 2
    world.platform.clock.advance(timedelta(minutes=5))
    again = await http.delete(f"{URL}/{granted['id']}", headers=ADMIN)
    assert again.status_code == 200 and again.json() == body  # unchanged, no new version
    head = await _head(pool)
    assert head is not None and head["version"] == 2
    assert (await http.delete(f"{URL}/999999", headers=ADMIN)).status_code == 404
    # Another vehicle's entitlement is not found through this one.
    other = await _grant(
        world, {"feature": "heated_seats", "kind": "purchase"}, f"/v1/vehicles/{VIN_B}/entitlements"
    )
    response = await http.delete(f"{URL}/{other['id']}", headers=ADMIN)
    assert (response.status_code, response.json()["code"]) == (404, "entitlement_not_found")


async def test_the_owner_sees_what_is_in_force_others_do_not_see_the_car(
    world: World, pool: asyncpg.Pool
) -> None:
    http = world.platform.http
    kept = await _grant(world, {"feature": "adaptive_cruise", "kind": "purchase"})
    gone = await _grant(world, {"feature": "heated_seats", "kind": "purchase"})
    await http.delete(f"{URL}/{gone['id']}", headers=ADMIN)
    # A subscription of a previous owner is not shown to A (api.customers.garage's rule).
    previous = await world.platform.customer("previous@example.com")
    subscription = await pool.fetchval(
        "INSERT INTO subscriptions (customer_id, vin, plan, status, started_at)"
        " VALUES ($1, $2, 'sport', 'active', now()) RETURNING id",
        previous,
        VIN_A,
    )
    await _grant(
        world,
        {"feature": "performance_boost", "kind": "subscription", "subscription_id": subscription},
    )
    mine = await http.get(URL, headers=world.a)
    assert mine.status_code == 200
    assert [e["id"] for e in mine.json()["data"]] == [kept["id"]]
    everything = (await http.get(URL, headers=ADMIN)).json()
    assert everything["count"] == 3
    assert (await http.get(URL, headers=world.b)).status_code == 404
    assert (await http.get(URL, headers=world.centre)).status_code == 403
    body = {"feature": "heated_seats", "kind": "purchase"}
    for caller in (world.a, world.b, world.centre):
        assert (await http.post(URL, json=body, headers=caller)).status_code == 403
        assert (await http.delete(f"{URL}/{kept['id']}", headers=caller)).status_code == 403
    assert (await http.get(URL)).status_code == 401


async def test_erasure_revokes_subscription_features_as_a_new_document(
    world: World, pool: asyncpg.Pool
) -> None:
    subscription = await pool.fetchval(
        "INSERT INTO subscriptions (customer_id, vin, plan, status, started_at)"
        " VALUES ($1, $2, 'comfort', 'active', now()) RETURNING id",
        world.a_id,
        VIN_A,
    )
    await _grant(
        world, {"feature": "heated_seats", "kind": "subscription", "subscription_id": subscription}
    )
    await _grant(world, {"feature": "adaptive_cruise", "kind": "purchase"})
    erased = await world.platform.http.delete("/v1/me", headers=world.a)
    assert erased.status_code == 200, erased.text
    head = await _head(pool)
    # Erasure revoked the entitlement and unlinked its subscription (ON DELETE SET NULL): each
    # a change, each a version; the push service signs the newest.
    assert head is not None and head["version"] == 4
    rows = await pool.fetch(
        "SELECT feature, revoked_at IS NOT NULL AS revoked, version FROM entitlements"
        " WHERE vin = $1 ORDER BY feature",
        VIN_A,
    )
    assert [tuple(r) for r in rows] == [("adaptive_cruise", False, 2), ("heated_seats", True, 4)]


async def test_a_vehicle_holds_at_most_one_document_of_features(
    world: World, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "INSERT INTO entitlements (vin, feature, kind, valid_from)"
        " SELECT $1, 'feature_' || n, 'purchase', now() FROM generate_series(1, 256) AS n",
        VIN_A,
    )
    response = await world.platform.http.post(
        URL, json={"feature": "heated_seats", "kind": "purchase"}, headers=ADMIN
    )
    assert (response.status_code, response.json()["code"]) == (409, "too_many_entitlements")
