"""Access tokens (pure core), the token endpoint, the login throttle and the body cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import jwt
import pytest
from pydantic import ValidationError

from api.security.principal import Principal, Role
from api.security.tokens import (
    TokenError,
    TokenExpiredError,
    issue_access_token,
    verify_access_token,
)
from api.settings import ApiSettings
from tests.api.customer_platform import (
    ADMIN_TOKEN,
    PASSWORD,
    Platform,
    other_address,
    running_platform,
)

KEY = b"k" * 32
OLD_KEY = b"o" * 32
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)


# -- the pure core ----------------------------------------------------------------------------


def test_a_token_names_its_principal_until_it_expires() -> None:
    centre = Principal.client("sc-1", Role.SERVICE_CENTER, frozenset({"c1", "c2"}))
    issued = issue_access_token(centre, key=KEY, now=NOW, ttl=TTL)
    assert issued.expires_at == NOW + TTL
    assert verify_access_token(issued.token, keys=[KEY], now=NOW + TTL / 2) == centre
    claims = jwt.decode(
        issued.token,
        KEY,
        algorithms=["HS256"],
        audience="fleetlink-api",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["role"] == "service_center" and claims["centres"] == ["c1", "c2"]
    assert claims["exp"] - claims["iat"] == TTL.total_seconds()
    with pytest.raises(TokenExpiredError):
        verify_access_token(issued.token, keys=[KEY], now=NOW + TTL + timedelta(minutes=1))


def test_tokens_signed_otherwise_are_refused() -> None:
    customer = Principal.customer(uuid4())
    good = issue_access_token(customer, key=KEY, now=NOW, ttl=TTL).token
    forged = [
        issue_access_token(customer, key=b"x" * 32, now=NOW, ttl=TTL).token,  # wrong key
        jwt.encode({"sub": customer.subject, "role": "fleet_admin"}, key=None, algorithm="none"),
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # signature bits flipped
        jwt.encode(  # right key, no expiry
            {"sub": customer.subject, "role": "customer", "iss": "fleetlink", "iat": 1},
            KEY,
            algorithm="HS256",
        ),
        "not.a.token",
    ]
    for token in forged:
        with pytest.raises(TokenError):
            verify_access_token(token, keys=[KEY], now=NOW)


def test_the_previous_key_still_verifies_after_a_rotation() -> None:
    admin = Principal.client("ops", Role.FLEET_ADMIN, frozenset())
    old = issue_access_token(admin, key=OLD_KEY, now=NOW, ttl=TTL).token
    assert verify_access_token(old, keys=[KEY, OLD_KEY], now=NOW) == admin
    with pytest.raises(TokenError):
        verify_access_token(old, keys=[KEY], now=NOW)


def test_a_customer_token_must_name_a_customer() -> None:
    bad = Principal("client:sc-1", Role.CUSTOMER)
    token = issue_access_token(bad, key=KEY, now=NOW, ttl=TTL).token
    with pytest.raises(TokenError):
        verify_access_token(token, keys=[KEY], now=NOW)


def test_jwt_secret_placeholders_are_refused_and_the_default_is_derived() -> None:
    with pytest.raises(ValidationError):
        ApiSettings(admin_token=ADMIN_TOKEN, jwt_secret="changeme")
    with pytest.raises(ValidationError):
        ApiSettings(admin_token=ADMIN_TOKEN, jwt_secret="short-secret")
    derived = ApiSettings(admin_token=ADMIN_TOKEN).jwt_signing_key
    assert len(derived) == 32 and ADMIN_TOKEN.encode() not in derived
    other = ApiSettings(admin_token=ADMIN_TOKEN + "x").jwt_signing_key
    assert derived != other
    configured = ApiSettings(
        admin_token=ADMIN_TOKEN, jwt_secret="s" * 40, jwt_previous_secret="p" * 40
    )
    assert configured.jwt_verification_keys == (b"s" * 40, b"p" * 40)


# -- the token endpoint -----------------------------------------------------------------------


@pytest.fixture
async def platform(pool: asyncpg.Pool) -> AsyncIterator[Platform]:
    async with running_platform(pool, login_max_failures=3, login_window_s=60) as running:
        await running.customer("ada@example.com")
        yield running


def password_form(username: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


async def test_the_password_grant_gives_a_customer_token(platform: Platform) -> None:
    response = await platform.http.post(
        "/v1/auth/token", data=password_form("ADA@example.com", PASSWORD)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["role"] == "customer"
    assert body["expires_in"] == 900
    assert response.headers["Cache-Control"] == "no-store"
    me = await platform.http.get(
        "/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["email"] == "ada@example.com"


async def test_wrong_password_and_unknown_user_answer_alike(platform: Platform) -> None:
    wrong = await platform.http.post(
        "/v1/auth/token", data=password_form("ada@example.com", "x" * 12)
    )
    unknown = await platform.http.post(
        "/v1/auth/token", data=password_form("bob@example.com", "x" * 12)
    )
    assert wrong.status_code == unknown.status_code == 400
    assert (
        wrong.json()
        == unknown.json()
        == {
            "code": "invalid_grant",
            "message": "wrong e-mail or password",
        }
    )


async def test_unsupported_grants_and_missing_fields(platform: Platform) -> None:
    response = await platform.http.post("/v1/auth/token", data={"grant_type": "implicit"})
    assert (response.status_code, response.json()["code"]) == (400, "unsupported_grant_type")
    response = await platform.http.post("/v1/auth/token", data={"grant_type": "password"})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_request")
    response = await platform.http.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
    )
    assert (response.status_code, response.json()["code"]) == (401, "invalid_client")


async def test_an_expired_token_says_so(platform: Platform) -> None:
    headers = await platform.login("ada@example.com")
    assert (await platform.http.get("/v1/me", headers=headers)).status_code == 200
    platform.clock.advance(timedelta(minutes=16))
    response = await platform.http.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


async def test_login_failures_are_throttled_per_address_and_name_and_recover(
    platform: Platform,
) -> None:
    http = platform.http
    for _ in range(3):
        failed = await http.post("/v1/auth/token", data=password_form("ada@example.com", "w" * 12))
        assert failed.status_code == 400
    # Locked out now, even with the right password: the password is not even checked.
    locked = await http.post("/v1/auth/token", data=password_form("ada@example.com", PASSWORD))
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_attempts"
    assert locked.headers["Retry-After"] == "60"
    # The same name from another address, and another name from this one, are not affected.
    async with await other_address(platform) as elsewhere:
        ok = await elsewhere.post("/v1/auth/token", data=password_form("ada@example.com", PASSWORD))
        assert ok.status_code == 200
    await platform.customer("bob@example.com")
    assert (await platform.login("bob@example.com"))["Authorization"]
    # After the window the lock lifts.
    platform.clock.advance(timedelta(seconds=61))
    recovered = await http.post("/v1/auth/token", data=password_form("ada@example.com", PASSWORD))
    assert recovered.status_code == 200


async def test_the_throttle_keeps_bounded_memory(platform: Platform) -> None:
    throttle = platform.app.state.fleetlink.login_throttle
    for i in range(50):
        await platform.http.post(
            "/v1/auth/token", data=password_form(f"u{i}@example.com", "w" * 12)
        )
    # One key per (address, name) plus one per address; the broker's table caps and sweeps.
    assert throttle.tracked == 51


async def test_an_erased_customer_s_token_stops_working(platform: Platform) -> None:
    headers = await platform.login("ada@example.com")
    assert (await platform.http.delete("/v1/me", headers=headers)).status_code == 200
    response = await platform.http.get("/v1/me", headers=headers)
    assert response.status_code == 401


# -- request body cap -------------------------------------------------------------------------


async def test_a_body_over_the_cap_is_413_with_the_api_error_shape(pool: asyncpg.Pool) -> None:
    async with running_platform(pool, max_request_body_bytes=2048) as platform:
        headers = await _customer_headers(platform)
        big = {"given_name": "x" * 4000}
        response = await platform.http.patch("/v1/me", json=big, headers=headers)
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"

        # A chunked body that declares no length is cut off as well.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 512

        streamed = await platform.http.patch(
            "/v1/me",
            content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        # Under the cap everything works as before.
        small = await platform.http.patch("/v1/me", json={"given_name": "Ada"}, headers=headers)
        assert small.status_code == 200 and small.json()["given_name"] == "Ada"


async def _customer_headers(platform: Platform) -> dict[str, str]:
    await platform.customer("cap@example.com")
    return await platform.login("cap@example.com")


async def test_a_burst_of_parallel_guesses_gets_no_more_tries_than_the_limit(
    platform: Platform,
) -> None:
    guesses = [password_form("ada@example.com", f"guess-{i:04d}xx") for i in range(12)]
    answers = await asyncio.gather(*(platform.http.post("/v1/auth/token", data=g) for g in guesses))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(400) == 3  # the limit of this platform: 3 checked, the rest refused
    assert codes.count(429) == 9


async def test_successful_logins_do_not_count_towards_the_lock(platform: Platform) -> None:
    for _ in range(5):
        assert (await platform.login("ada@example.com"))["Authorization"]
