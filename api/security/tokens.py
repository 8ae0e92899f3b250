"""Access tokens: HS256 JWTs (RFC 7519) issued and verified with ``now`` passed in.

No I/O: the caller supplies the keys and the time. pyjwt's own clock checks are switched off and
done here against ``now``, so tests and the API's clock decide what "expired" means. Verification
tries the current key, then the previous one (key rotation without logging everyone out).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import jwt

from api.security.principal import Principal, Role

ALGORITHM = "HS256"
ISSUER = "fleetlink"
AUDIENCE = "fleetlink-api"
#: Tolerated clock skew between the API instances that issue and verify.
LEEWAY = timedelta(seconds=30)
_REQUIRED = ("exp", "iat", "sub", "role", "iss", "aud")


class TokenError(ValueError):
    code = "invalid_token"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class TokenExpiredError(TokenError):
    code = "token_expired"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime


def issue_access_token(
    principal: Principal, *, key: bytes, now: datetime, ttl: timedelta
) -> IssuedToken:
    expires_at = now + ttl
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": principal.subject,
        "role": principal.role.value,
        "centres": sorted(principal.centres),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        # A unique id per token: room for a deny-list later without changing the format.
        "jti": secrets.token_urlsafe(12),
    }
    return IssuedToken(jwt.encode(claims, key, algorithm=ALGORITHM), expires_at)


def verify_access_token(token: str, *, keys: Sequence[bytes], now: datetime) -> Principal:
    """The principal a token names, or :class:`TokenError`. Only HS256 is accepted: the
    algorithm comes from us, never from the token header (no ``none``, no RS/HS confusion)."""
    claims: dict[str, Any] | None = None
    for key in keys:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={
                    "require": list(_REQUIRED),
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token: {exc}") from exc
    if claims is None:
        raise TokenError("invalid token: signature does not verify")
    return _principal(claims, now)


def _principal(claims: dict[str, Any], now: datetime) -> Principal:
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise TokenError("invalid token: exp and iat must be integers")
    instant = now.timestamp()
    if exp <= instant - LEEWAY.total_seconds():
        raise TokenExpiredError("the access token has expired; request a new one")
    if iat > instant + LEEWAY.total_seconds():
        raise TokenError("invalid token: issued in the future")
    try:
        role = Role(claims["role"])
    except ValueError as exc:
        raise TokenError("invalid token: unknown role") from exc
    subject, centres = claims["sub"], claims.get("centres", [])
    if not isinstance(subject, str) or not isinstance(centres, list):
        raise TokenError("invalid token: malformed sub or centres")
    if not all(isinstance(c, str) for c in centres):
        raise TokenError("invalid token: malformed centres")
    if role is Role.CUSTOMER and not _is_customer_subject(subject):
        raise TokenError("invalid token: malformed customer subject")
    return Principal(subject, role, frozenset(centres))


def _is_customer_subject(subject: str) -> bool:
    kind, _, rest = subject.partition(":")
    try:
        UUID(rest)
    except ValueError:
        return False
    return kind == "customer"
