"""Customer and service-client passwords: argon2id (RFC 9106) with argon2-cffi's defaults.

Unlike device secrets (``api.vehicle_registry``, random 256-bit tokens), people choose these, so
the cost stays at the library's recommended profile. Hashing runs in a worker thread so a login
never blocks the event loop. An unknown login name is checked against a dummy hash, so the
answer takes as long as for a known one and timing does not reveal which e-mails exist.
"""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


@cache
def _dummy_hash() -> str:
    return HASHER.hash("fleetlink-dummy-password-for-unknown-users")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; None (unknown user, no password set) is
    checked against a dummy hash and answers False in the same time."""
    candidate = stored_hash if stored_hash is not None else await asyncio.to_thread(_dummy_hash)
    try:
        await asyncio.to_thread(HASHER.verify, candidate, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored_hash is not None
