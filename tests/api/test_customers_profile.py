"""Customer profiles: admin create/list/get, the customer's own GET/PATCH /v1/me."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from tests.api.customer_platform import ADMIN, Platform, running_platform


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool, max_page_limit=2) as running:
        yield running


async def test_a_created_customer_has_the_full_profile(platform: Platform) -> None:
    body = {
        "email": "ada@example.com",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "phone": "+4915112345678",
        "address_line": "Hauptstr. 1",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
        "language": "de-DE",
        "preferred_channels": ["in_car", "email"],
        "quiet_hours": {"start": "22:00:00", "end": "07:00:00"},
        "timezone": "Europe/Berlin",
    }
    created = await platform.http.post("/v1/customers", json=body, headers=ADMIN)
    assert created.status_code == 201
    profile = created.json()
    assert {k: profile[k] for k in body} == body
    fetched = await platform.http.get(f"/v1/customers/{profile['id']}", headers=ADMIN)
    assert fetched.json() == profile
    assert "password" not in profile and "password_hash" not in profile


async def test_the_customer_changes_only_what_they_send(platform: Platform) -> None:
    await platform.customer("ada@example.com", phone="+4915112345678", given_name="Ada")
    me = await platform.login("ada@example.com")
    changed = await platform.http.patch(
        "/v1/me",
        json={"language": "fr", "phone": None, "quiet_hours": {"start": "21:30", "end": "06:00"}},
        headers=me,
    )
    assert changed.status_code == 200
    profile = changed.json()
    assert profile["language"] == "fr" and profile["phone"] is None
    assert profile["given_name"] == "Ada"
    assert profile["quiet_hours"] == {"start": "21:30:00", "end": "06:00:00"}
    assert (await platform.http.get("/v1/me", headers=me)).json() == profile
    cleared = await platform.http.patch("/v1/me", json={"quiet_hours": None}, headers=me)
    assert cleared.json()["quiet_hours"] is None


@pytest.mark.parametrize(
    "change",
    [
        {"timezone": "Mars/Olympus"},
        {"timezone": "../../etc/passwd"},
        {"preferred_channels": ["app", "app"]},
        {"preferred_channels": ["pigeon"]},
        {"preferred_channels": []},
        {"phone": "0151 123"},
        {"email": None},
        {"language": "english"},
        {"given_name": "A\x00da"},
        {"quiet_hours": {"start": "22:00"}},
        {"role": "fleet_admin"},
    ],
)
async def test_invalid_profile_changes_are_422(
    platform: Platform, change: dict[str, object]
) -> None:
    await platform.customer("ada@example.com")
    me = await platform.login("ada@example.com")
    response = await platform.http.patch("/v1/me", json=change, headers=me)
    assert response.status_code == 422, change
    assert response.json()["code"] == "invalid_request"


async def test_an_e_mail_belongs_to_one_customer_whatever_its_case(platform: Platform) -> None:
    await platform.customer("ada@example.com")
    bob = await platform.customer("bob@example.com")
    again = await platform.http.post(
        "/v1/customers", json={"email": "ADA@example.com"}, headers=ADMIN
    )
    assert (again.status_code, again.json()["code"]) == (409, "email_taken")
    headers = await platform.login("bob@example.com")
    taken = await platform.http.patch("/v1/me", json={"email": "Ada@Example.com"}, headers=headers)
    assert (taken.status_code, taken.json()["code"]) == (409, "email_taken")
    assert (await platform.http.get(f"/v1/customers/{bob}", headers=ADMIN)).json()["email"] == (
        "bob@example.com"
    )


async def test_the_customer_list_pages_within_the_cap(platform: Platform) -> None:
    ids = []
    for i in range(3):
        ids.append(await platform.customer(f"c{i}@example.com"))
        platform.clock.advance(timedelta(seconds=1))
    first = (await platform.http.get("/v1/customers?limit=500", headers=ADMIN)).json()
    assert first["count"] == 3 and [c["id"] for c in first["data"]] == ids[:2]
    rest = (await platform.http.get("/v1/customers?offset=2", headers=ADMIN)).json()
    assert [c["id"] for c in rest["data"]] == ids[2:]
    too_big = await platform.http.get("/v1/customers?limit=501", headers=ADMIN)
    assert too_big.status_code == 422
