"""Customer and service-client passwords: argon2id (RFC 9106).

Unlike device secrets (``api.vehicle_registry``, random 256-bit tokens), people choose these, so
the cost defaults to argon2-cffi's recommended profile (``ApiSettings.password_hash_*`` tunes it
to the hardware). Hashing runs in a worker thread so a login never blocks the event loop. An
unknown login name is checked against a dummy hash, so the answer takes as long as for a known
one and timing does not reveal which e-mails exist.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; None (unknown user, no password set)
        is checked against a dummy hash and answers False in the same time."""
        if self._dummy is None:
            self._dummy = await self.hash("fleetlink-dummy-password-for-unknown-users")
        candidate = stored_hash if stored_hash is not None else self._dummy
        try:
            await asyncio.to_thread(self._hasher.verify, candidate, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored_hash is not None
