"""The vehicle registry: registration, listing, and credential checks for the broker.

Device secrets are 256-bit random tokens generated here, so argon2 runs with light parameters:
its job is to make a leaked table useless, and a random 256-bit secret cannot be guessed whatever
the cost factor, while a fleet of thousands of cars reconnecting after a broker restart must not
queue behind seconds of hashing. Hashing runs in a worker thread, and a successful check is
cached briefly so reconnect storms cost one hash per car; the short TTL bounds how long a
revocation takes to bite.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from broker.policy import Identity, VehicleIdentity
from protocol.catalogue import Powertrain
from protocol.vin import Vin

SECRET_BYTES = 32
VERIFY_CACHE_TTL_S = 5.0
DEVICE_SECRET_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


class VehicleAlreadyRegisteredError(ValueError):
    code = "vehicle_already_registered"

    def __init__(self, vin: str) -> None:
        super().__init__(f"vehicle {vin} is already registered")
        self.vin = vin


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    vin: Vin
    brand: str
    model: str
    model_year: int
    powertrain: Powertrain


@dataclass(frozen=True, slots=True)
class VehicleRecord:
    vin: str
    brand: str
    model: str
    model_year: int
    powertrain: Literal["ice", "bev", "phev", "hev"]  # a CHECK constraint in SQL
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


class VehicleRegistry:
    def __init__(self, pool: asyncpg.Pool, hasher: PasswordHasher = DEVICE_SECRET_HASHER) -> None:
        self._pool = pool
        self._hasher = hasher
        self._verified: dict[str, tuple[bytes, float]] = {}

    async def register(self, spec: VehicleSpec, secret: str | None = None) -> Credentials:
        secret = secret or new_secret()
        secret_hash = await asyncio.to_thread(self._hasher.hash, secret)
        try:
            await self._pool.execute(
                "INSERT INTO vehicles (vin, brand, model, model_year, powertrain, secret_hash)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                spec.vin,
                spec.brand,
                spec.model,
                spec.model_year,
                spec.powertrain.value,
                secret_hash,
            )
        except asyncpg.UniqueViolationError as exc:
            raise VehicleAlreadyRegisteredError(spec.vin) from exc
        return Credentials(username=spec.vin, password=secret)

    async def rotate_secret(self, vin: str, secret: str | None = None) -> Credentials | None:
        """A new secret for ``vin``; the old one stops working (cache dropped). None: unknown."""
        secret = secret or new_secret()
        secret_hash = await asyncio.to_thread(self._hasher.hash, secret)
        status = await self._pool.execute(
            "UPDATE vehicles SET secret_hash = $2 WHERE vin = $1", vin, secret_hash
        )
        self._verified.pop(vin, None)
        return Credentials(username=vin, password=secret) if status == "UPDATE 1" else None

    async def registered_vins(self) -> set[str]:
        rows = await self._pool.fetch("SELECT vin FROM vehicles")
        return {r["vin"] for r in rows}

    async def list(self, *, limit: int, offset: int) -> tuple[list[VehicleRecord], int]:
        async with self._pool.acquire() as conn:
            count = await conn.fetchval("SELECT count(*) FROM vehicles")
            rows = await conn.fetch(
                _SELECT_VEHICLES + " ORDER BY v.created_at, v.vin LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        return [VehicleRecord(**dict(r)) for r in rows], int(count)

    async def get(self, vin: str) -> VehicleRecord | None:
        row = await self._pool.fetchrow(_SELECT_VEHICLES + " WHERE v.vin = $1", vin)
        return VehicleRecord(**dict(row)) if row else None

    async def verify(self, username: str, password: str) -> Identity | None:
        """CredentialVerifier for the broker."""
        try:
            vin = Vin(username)
        except ValueError:
            return None
        digest = hashlib.sha256(password.encode()).digest()
        cached = self._verified.get(vin)
        now = time.monotonic()
        if cached is not None and cached[1] > now and secrets.compare_digest(cached[0], digest):
            return VehicleIdentity(vin)
        row = await self._pool.fetchrow(
            "SELECT secret_hash FROM vehicles WHERE vin = $1 AND revoked_at IS NULL", vin
        )
        if row is None:
            return None
        try:
            await asyncio.to_thread(self._hasher.verify, row["secret_hash"], password)
        except (VerificationError, InvalidHashError):
            return None
        self._verified[vin] = (digest, now + VERIFY_CACHE_TTL_S)
        return VehicleIdentity(vin)


# last_seen_at: the newest sample time in the latest-state table (presence comes with issue 4).
_SELECT_VEHICLES = """
SELECT v.vin, v.brand, v.model, v.model_year, v.powertrain, v.created_at, v.revoked_at,
       (SELECT max(s.ts) FROM vehicle_state s WHERE s.vin = v.vin) AS last_seen_at
FROM vehicles v
"""
