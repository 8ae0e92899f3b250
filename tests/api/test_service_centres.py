"""Service centres and vans (admin writes, everyone signed in reads) and the demo seed."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from api.service.catalogue import recalls_for_brand
from api.service.recall_check import VehicleIdentity, affects
from api.service.seed import RECALLS, WARRANTY_TERMS, seed_service_network
from simulator.fleet import MODELS, build_fleet
from tests.api.customer_platform import ADMIN, running_platform
from tests.api.test_service_support import EVERY_DAY

pytestmark = pytest.mark.integration

CENTRE = {
    "id": "werkstatt-sued",
    "name": "Werkstatt Süd",
    "address": "Lindwurmstraße 1, 80337 München",
    "lat": 48.13,
    "lon": 11.56,
    "bays": 3,
    "skills": ["tyres", "brakes"],
    "opening_hours": [
        {"weekday": 1, "opens": "07:30", "closes": "12:00"},
        {"weekday": 1, "opens": "13:00", "closes": "18:00"},
    ],
}


async def test_admins_create_and_change_centres_everyone_reads_them(pool: asyncpg.Pool) -> None:
    async with running_platform(pool) as platform:
        http = platform.http
        await platform.customer("a@example.com")
        a = await platform.login("a@example.com")
        assert (await http.post("/v1/service/centres", json=CENTRE, headers=a)).status_code == 403
        created = await http.post("/v1/service/centres", json=CENTRE, headers=ADMIN)
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["timezone"], body["slot_minutes"], body["active"]) == (
            "Europe/Berlin",
            60,
            True,
        )
        assert len(body["opening_hours"]) == 2
        again = await http.post("/v1/service/centres", json=CENTRE, headers=ADMIN)
        assert (again.status_code, again.json()["code"]) == (409, "already_exists")
        changed = await http.patch(
            "/v1/service/centres/werkstatt-sued",
            json={"bays": 4, "opening_hours": EVERY_DAY, "brand": None},
            headers=ADMIN,
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["bays"], len(changed.json()["opening_hours"])) == (4, 7)
        read = await http.get("/v1/service/centres/werkstatt-sued", headers=a)
        assert read.json() == changed.json()
        listed = await http.get("/v1/service/centres", params={"skill": "tyres"}, headers=a)
        assert [c["id"] for c in listed.json()["data"]] == ["werkstatt-sued"]
        listed = await http.get("/v1/service/centres", params={"skill": "paint"}, headers=a)
        assert listed.json() == {"data": [], "count": 0}
        missing = await http.get("/v1/service/centres/nowhere", headers=a)
        assert (missing.status_code, missing.json()["code"]) == (404, "centre_not_found")


@pytest.mark.parametrize(
    "change",
    [
        {
            "opening_hours": [
                {"weekday": 1, "opens": "08:00", "closes": "12:00"},
                {"weekday": 1, "opens": "11:00", "closes": "14:00"},
            ]
        },
        {"opening_hours": [{"weekday": 8, "opens": "08:00", "closes": "12:00"}]},
        {"opening_hours": [{"weekday": 1, "opens": "12:00", "closes": "08:00"}]},
        {"timezone": "Mars/Olympus_Mons"},
        {"slot_minutes": 50},
        {"bays": 0},
        {"skills": ["tyres", "tyres"]},
        {"id": "Not A Slug"},
        {"lat": 91},
        {"colour": "blue"},
    ],
)
async def test_invalid_centres_are_refused(pool: asyncpg.Pool, change: dict[str, object]) -> None:
    async with running_platform(pool) as platform:
        response = await platform.http.post(
            "/v1/service/centres", json={**CENTRE, **change}, headers=ADMIN
        )
        assert (response.status_code, response.json()["code"]) == (422, "invalid_request")


async def test_a_required_field_cannot_be_cleared(pool: asyncpg.Pool) -> None:
    async with running_platform(pool) as platform:
        await platform.http.post("/v1/service/centres", json=CENTRE, headers=ADMIN)
        response = await platform.http.patch(
            "/v1/service/centres/werkstatt-sued", json={"name": None}, headers=ADMIN
        )
        assert response.status_code == 422


async def test_vans_belong_to_a_centre(pool: asyncpg.Pool) -> None:
    async with running_platform(pool) as platform:
        http = platform.http
        await http.post("/v1/service/centres", json=CENTRE, headers=ADMIN)
        van = {"id": "van-1", "name": "Van", "home_centre_id": "werkstatt-sued", "range_km": 30}
        created = await http.post("/v1/service/vans", json=van, headers=ADMIN)
        assert (created.status_code, created.json()["slot_minutes"]) == (201, 120)
        orphan = await http.post(
            "/v1/service/vans",
            json={**van, "id": "van-2", "home_centre_id": "nowhere"},
            headers=ADMIN,
        )
        assert (orphan.status_code, orphan.json()["code"]) == (404, "centre_not_found")
        retired = await http.patch("/v1/service/vans/van-1", json={"active": False}, headers=ADMIN)
        assert retired.json()["active"] is False
        listed = await http.get("/v1/service/vans", headers=ADMIN)
        assert [v["id"] for v in listed.json()["data"]] == ["van-1"]
        assert (await http.get("/v1/service/vans/van-9", headers=ADMIN)).status_code == 404


async def test_the_seed_is_idempotent_and_matches_the_simulated_fleet(pool: asyncpg.Pool) -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    async with pool.acquire() as conn:
        await seed_service_network(conn, now=now)
        await conn.execute("UPDATE service_centres SET bays = 1 WHERE id = 'service-001'")
        await seed_service_network(conn, now=now)  # again: nothing duplicated or overwritten
        centres = await conn.fetch("SELECT id, bays, timezone FROM service_centres ORDER BY id")
        assert len(centres) == 10
        assert {c["timezone"] for c in centres} == {"Europe/Berlin"}
        assert next(c["bays"] for c in centres if c["id"] == "service-001") == 1
        assert await conn.fetchval("SELECT count(*) FROM service_opening_hours") == 50
        assert await conn.fetchval("SELECT count(*) FROM service_vans") == 1
        assert await conn.fetchval("SELECT count(*) FROM recall_campaigns") == len(RECALLS)
        terms = {r["brand"] for r in await conn.fetch("SELECT brand FROM warranty_terms")}
        assert terms == {m.brand for m in MODELS} == set(WARRANTY_TERMS)
        fleet = build_fleet(400, seed=7)
        for code, *_ in RECALLS:
            brand = next(r[2] for r in RECALLS if r[0] == code)
            (campaign,) = [c for c in await recalls_for_brand(conn, brand) if c.code == code]
            hits = [
                v
                for v in fleet
                if affects(campaign, VehicleIdentity(str(v.vin), v.brand, v.model, v.model_year))
            ]
            same_model = [v for v in fleet if v.model == campaign.model]
            assert 0 < len(hits) < len(same_model), code
