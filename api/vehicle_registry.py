"""The vehicle registry: registration, credentials, revocation, and credential checks for the
broker.

Device secrets are 256-bit random tokens generated here, so argon2 runs with light parameters:
its job is to make a leaked table useless, and a random 256-bit secret cannot be guessed whatever
the cost factor, while a fleet of thousands of cars reconnecting after a broker restart must not
queue behind seconds of hashing. Hashing runs in a worker thread, and a successful check is
cached briefly so reconnect storms cost one hash per car; the short TTL bounds how long a
revocation takes to bite even if its notification is lost (normally it bites at once: see
``forget``). A second one-way hash in Mosquitto's format lets the production broker check the
same secret (ADR 0004).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from broker.certificates import (
    CertificateError,
    load_certificate,
    vehicle_identity_from_certificate,
)
from broker.fleet_ca import IssuedCertificate
from broker.mosquitto import mosquitto_password_hash
from broker.policy import Identity, VehicleIdentity
from protocol.catalogue import Powertrain
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms
from protocol.vin import Vin

SECRET_BYTES = 32
VERIFY_CACHE_TTL_S = 5.0
DEVICE_SECRET_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)

PowertrainName = Literal["ice", "bev", "phev", "hev"]


class RegistryError(ValueError):
    code = "registry_error"

    def __init__(self, message: str, *, vin: str) -> None:
        super().__init__(message)
        self.vin = vin


class VehicleAlreadyRegisteredError(RegistryError):
    code = "vehicle_already_registered"

    def __init__(self, vin: str) -> None:
        super().__init__(f"vehicle {vin} is already registered", vin=vin)


class VehicleNotFoundError(RegistryError):
    code = "vehicle_not_found"

    def __init__(self, vin: str) -> None:
        super().__init__(f"vehicle {vin} is not registered", vin=vin)


class VehicleRevokedError(RegistryError):
    code = "vehicle_revoked"

    def __init__(self, vin: str) -> None:
        super().__init__(
            f"vehicle {vin} is revoked; revoked vehicles stay revoked "
            "(re-admission is not supported yet)",
            vin=vin,
        )


@dataclass(frozen=True, slots=True)
class Ecu:
    ecu_id: str
    hardware_id: str
    software_version: str


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    vin: Vin
    brand: str
    model: str
    model_year: int
    powertrain: Powertrain
    ecus: tuple[Ecu, ...] = ()


@dataclass(frozen=True, slots=True)
class VehicleRecord:
    vin: str
    brand: str
    model: str
    model_year: int
    powertrain: PowertrainName  # a CHECK constraint in SQL
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class Presence:
    online: bool
    changed_at: datetime
    last_connected_at: datetime | None
    last_disconnected_at: datetime | None


@dataclass(frozen=True, slots=True)
class VehicleDetail:
    record: VehicleRecord
    ecus: tuple[Ecu, ...]
    presence: Presence | None
    credentials_rotated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class BrokerCredential:
    """What a production broker needs to admit a vehicle: its VIN and the Mosquitto hash."""

    vin: str
    mosquitto_hash: str


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


@dataclass(frozen=True, slots=True)
class _Hashes:
    argon2: str
    mosquitto: str


class VehicleRegistry:
    def __init__(
        self,
        pool: asyncpg.Pool,
        hasher: PasswordHasher = DEVICE_SECRET_HASHER,
        *,
        ca_certificate_pem: bytes | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._pool = pool
        self._hasher = hasher
        self._ca_certificate_pem = ca_certificate_pem
        self._clock = clock
        # VIN -> (sha256 of the secret last verified, monotonic expiry)
        self._verified: dict[str, tuple[bytes, float]] = {}
        # VIN -> count of forget() calls: a verification that started before a forget() (a
        # rotation or revocation racing a login) must not re-cache the old secret.
        self._generation: dict[str, int] = {}

    async def _hash(self, secret: str) -> _Hashes:
        argon2_hash = await asyncio.to_thread(self._hasher.hash, secret)
        return _Hashes(argon2_hash, mosquitto_password_hash(secret))

    # -- registration and credentials -------------------------------------------------------

    async def register(self, spec: VehicleSpec, secret: str | None = None) -> Credentials:
        secret = secret or new_secret()
        hashes = await self._hash(secret)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO vehicles (vin, brand, model, model_year, powertrain,"
                    " secret_hash, mosquitto_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    spec.vin,
                    spec.brand,
                    spec.model,
                    spec.model_year,
                    spec.powertrain.value,
                    hashes.argon2,
                    hashes.mosquitto,
                )
                await _insert_ecus(conn, spec.vin, spec.ecus)
        except asyncpg.UniqueViolationError as exc:
            raise VehicleAlreadyRegisteredError(spec.vin) from exc
        return Credentials(username=spec.vin, password=secret)

    async def rotate_secret(self, vin: str, secret: str | None = None) -> Credentials:
        """A new secret for ``vin``; the old one stops working at once. A revoked vehicle's
        row is left alone (no new hash, no notification)."""
        secret = secret or new_secret()
        hashes = await self._hash(secret)
        async with self._pool.acquire() as conn, conn.transaction():
            rotated = await conn.fetchval(
                "UPDATE vehicles SET secret_hash = $2, mosquitto_hash = $3,"
                " credentials_rotated_at = now() WHERE vin = $1 AND revoked_at IS NULL"
                " RETURNING true",
                vin,
                hashes.argon2,
                hashes.mosquitto,
            )
            if rotated is None:
                # The guarded UPDATE matched nothing: the vehicle is unknown or revoked.
                raise await _refusal(conn, vin) or VehicleRevokedError(vin)
        self.forget(vin)
        return Credentials(username=vin, password=secret)

    async def revoke(self, vin: str) -> datetime:
        """Cut the vehicle off: no new connection, and brokers drop its live sessions (they
        listen for the ``vehicle_identity`` notification). Idempotent; returns when."""
        async with self._pool.acquire() as conn, conn.transaction():
            revoked_at: datetime | None = await conn.fetchval(
                "UPDATE vehicles SET revoked_at = coalesce(revoked_at, now()) WHERE vin = $1"
                " RETURNING revoked_at",
                vin,
            )
            # Its certificates go with it (and onto the CRL a production broker reads).
            await conn.execute(
                "UPDATE vehicle_certificates SET revoked_at = $2"
                " WHERE vin = $1 AND revoked_at IS NULL",
                vin,
                revoked_at,
            )
        self.forget(vin)
        if revoked_at is None:
            raise VehicleNotFoundError(vin)
        return revoked_at

    async def record_certificate(self, issued: IssuedCertificate) -> None:
        """Record an issued certificate so it can authenticate, unless its vehicle is revoked.

        The vehicle row is locked FOR SHARE first: ``revoke`` updates that row, so the two
        serialise. An ``INSERT ... WHERE EXISTS`` alone could read a snapshot from before a
        concurrent revocation committed, slip past the revocation's certificate UPDATE and
        leave a live certificate (missing from the CRL) for a revoked car."""
        async with self._pool.acquire() as conn, conn.transaction():
            refusal = await _refusal(conn, issued.vin, lock=True)
            if refusal is not None:
                raise refusal
            await conn.execute(
                "INSERT INTO vehicle_certificates (serial, vin, fingerprint_sha256, not_before,"
                " not_after) VALUES ($1, $2, $3, $4, $5)",
                issued.serial,
                issued.vin,
                issued.fingerprint_sha256,
                issued.not_before,
                issued.not_after,
            )

    async def ensure_admitted(self, vin: str) -> None:
        """Raise unless ``vin`` is registered and not revoked."""
        async with self._pool.acquire() as conn:
            refusal = await _refusal(conn, vin)
        if refusal is not None:
            raise refusal

    async def admitted_among(self, vins: Sequence[str]) -> set[str]:
        """Which of ``vins`` are registered and not revoked (one query)."""
        rows = await self._pool.fetch(
            "SELECT vin FROM vehicles WHERE vin = ANY($1::text[]) AND revoked_at IS NULL",
            list(vins),
        )
        return {r["vin"] for r in rows}

    def forget(self, vin: str) -> None:
        """Drop the cached verification, so the next login checks the database again."""
        self._verified.pop(vin, None)
        self._generation[vin] = self._generation.get(vin, 0) + 1

    # -- queries ----------------------------------------------------------------------------

    async def registered_vins(self) -> set[str]:
        rows = await self._pool.fetch("SELECT vin FROM vehicles")
        return {r["vin"] for r in rows}

    async def page(
        self, *, limit: int, offset: int, vins: Sequence[str] | None = None
    ) -> tuple[list[VehicleRecord], int]:
        """A page of vehicles in registration order; only ``vins`` when given."""
        where = "" if vins is None else " WHERE v.vin = ANY($3::text[])"
        only = () if vins is None else (list(vins),)
        async with self._pool.acquire() as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM vehicles v" + where.replace("$3", "$1"), *only
            )
            rows = await conn.fetch(
                SELECT_VEHICLES + where + " ORDER BY v.created_at, v.vin LIMIT $1 OFFSET $2",
                limit,
                offset,
                *only,
            )
        return [VehicleRecord(**dict(r)) for r in rows], int(count)

    async def get(self, vin: str) -> VehicleRecord | None:
        row = await self._pool.fetchrow(SELECT_VEHICLES + " WHERE v.vin = $1", vin)
        return VehicleRecord(**dict(row)) if row else None

    async def detail(self, vin: str) -> VehicleDetail | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(SELECT_VEHICLES + " WHERE v.vin = $1", vin)
            if row is None:
                return None
            ecus = await conn.fetch(
                "SELECT ecu_id, hardware_id, software_version FROM vehicle_ecus"
                " WHERE vin = $1 ORDER BY ecu_id",
                vin,
            )
            presence = await conn.fetchrow(
                "SELECT online, changed_at, last_connected_at, last_disconnected_at"
                " FROM vehicle_presence WHERE vin = $1",
                vin,
            )
            rotated = await conn.fetchval(
                "SELECT credentials_rotated_at FROM vehicles WHERE vin = $1", vin
            )
        return VehicleDetail(
            record=VehicleRecord(**dict(row)),
            ecus=tuple(Ecu(**dict(e)) for e in ecus),
            presence=Presence(**dict(presence)) if presence else None,
            credentials_rotated_at=rotated,
        )

    async def broker_credentials(self) -> list[BrokerCredential]:
        """Every vehicle a production broker should admit (not revoked, hash known)."""
        rows = await self._pool.fetch(
            "SELECT vin, mosquitto_hash FROM vehicles"
            " WHERE revoked_at IS NULL AND mosquitto_hash IS NOT NULL ORDER BY vin"
        )
        return [BrokerCredential(r["vin"], r["mosquitto_hash"]) for r in rows]

    # -- the broker's CredentialVerifier and CertificateVerifier -----------------------------

    async def verify_certificate(self, certificate_der: bytes) -> Identity | None:
        """A client certificate proves a vehicle when the fleet CA issued it, it is valid now,
        we recorded it at issuance, and neither it nor its vehicle is revoked."""
        if self._ca_certificate_pem is None:
            return None
        now = utc_from_ms(self._clock.now_ms())
        try:
            vin = vehicle_identity_from_certificate(
                certificate_der, self._ca_certificate_pem, now=now
            )
            serial = load_certificate(certificate_der).serial_number
        except CertificateError:
            return None
        row = await self._pool.fetchrow(
            "SELECT c.vin, c.revoked_at IS NULL AND v.revoked_at IS NULL AS admitted"
            " FROM vehicle_certificates c JOIN vehicles v USING (vin) WHERE c.serial = $1",
            serial,
        )
        if row is None or row["vin"] != vin or not row["admitted"]:
            return None
        return VehicleIdentity(vin)

    async def verify(self, username: str, password: str) -> Identity | None:
        try:
            vin = Vin(username)
        except ValueError:
            return None
        digest = hashlib.sha256(password.encode()).digest()
        cached = self._verified.get(vin)
        now = time.monotonic()
        if cached is not None and cached[1] > now and secrets.compare_digest(cached[0], digest):
            return VehicleIdentity(vin)
        generation = self._generation.get(vin, 0)
        row = await self._pool.fetchrow(
            "SELECT secret_hash FROM vehicles WHERE vin = $1 AND revoked_at IS NULL", vin
        )
        if row is None:
            return None
        try:
            await asyncio.to_thread(self._hasher.verify, row["secret_hash"], password)
        except (VerificationError, InvalidHashError):
            return None
        if self._generation.get(vin, 0) != generation:
            return None  # rotated or revoked while we were hashing: this secret may be stale
        self._verified[vin] = (digest, now + VERIFY_CACHE_TTL_S)
        return VehicleIdentity(vin)


async def _refusal(
    conn: asyncpg.Connection, vin: str, *, lock: bool = False
) -> RegistryError | None:
    """Why ``vin`` may not be used (unknown or revoked), or None when it is admitted. With
    ``lock`` the row is held FOR SHARE until the transaction ends, so a concurrent ``revoke``
    (which updates that row) waits for it."""
    admitted = await conn.fetchval(
        "SELECT revoked_at IS NULL FROM vehicles WHERE vin = $1" + (" FOR SHARE" if lock else ""),
        vin,
    )
    if admitted is None:
        return VehicleNotFoundError(vin)
    return None if admitted else VehicleRevokedError(vin)


async def _insert_ecus(conn: asyncpg.Connection, vin: str, ecus: Sequence[Ecu]) -> None:
    if ecus:
        await conn.executemany(
            "INSERT INTO vehicle_ecus (vin, ecu_id, hardware_id, software_version)"
            " VALUES ($1, $2, $3, $4)",
            [(vin, e.ecu_id, e.hardware_id, e.software_version) for e in ecus],
        )


# last_seen_at: the newest sample time in the latest-state table.
SELECT_VEHICLES = """
SELECT v.vin, v.brand, v.model, v.model_year, v.powertrain, v.created_at, v.revoked_at,
       (SELECT max(s.ts) FROM vehicle_state s WHERE s.vin = v.vin) AS last_seen_at
FROM vehicles v
"""
