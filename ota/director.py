"""The director repository on PostgreSQL (ADR 0009): one root for all vehicles, and per VIN a
line of targets, snapshot and timestamp versions, signed on demand.

When a car asks for ``timestamp.json`` the director computes the vehicle's plan (campaign
assignment plus last version report, :mod:`ota.director_plan`) and signs new versions only
when the plan changed or a role is close to expiry; otherwise it serves the stored bytes.
Snapshot and targets are then fetched by version (consistent snapshots), from storage. The
signing runs in a transaction holding a per-VIN advisory lock, so two API processes answering
the same car produce one linear history, and a reader sees the new targets, snapshot and
timestamp together or not at all.

Online keys are read from the key directory at each signing, as for the image repository,
so a rotation by another process takes effect at the next change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from ota.director_core import DirectorPlan, VehicleMetadata, sign_for_vehicle
from ota.director_errors import DirectorNotInitializedError
from ota.director_plan import load_plan
from ota.director_settings import DirectorSettings
from ota.keys import KeyDirectory
from ota.policy import ONLINE_ROLES, ROOT, TIMESTAMP, ExpiryPolicy
from ota.settings import OtaSettings
from ota.signing_repository import SignedMetadata
from ota.tuf_api import Signer

log = logging.getLogger(__name__)

# pg_advisory_xact_lock(class, key): the class keeps director locks apart from other users
# of two-key advisory locks; the key is hashtext(vin).
_LOCK_CLASS = 0x4644_4952  # "FDIR"


class Director:
    def __init__(self, pool: asyncpg.Pool, keys: KeyDirectory, expiry: ExpiryPolicy) -> None:
        self._pool = pool
        self.keys = keys
        self.expiry = expiry

    @classmethod
    def from_settings(
        cls, pool: asyncpg.Pool, ota: OtaSettings, settings: DirectorSettings | None = None
    ) -> Director:
        settings = settings or DirectorSettings()
        keys = KeyDirectory(settings.keys_path(ota), roles=ONLINE_ROLES)
        return cls(pool, keys, settings.expiry())

    # -- root -------------------------------------------------------------------------------

    async def root(self, version: int | None = None) -> SignedMetadata | None:
        async with self._pool.acquire() as conn:
            return await _root(conn, version)

    async def store_root(self, root: SignedMetadata, now: datetime) -> None:
        await self._pool.execute(
            "INSERT INTO ota_director_root (version, expires, body, created_at)"
            " VALUES ($1, $2, $3, $4)",
            root.version,
            root.expires,
            root.body,
            now,
        )

    # -- per vehicle ------------------------------------------------------------------------

    async def stored(self, vin: str, role: str, version: int) -> bytes | None:
        body = await self._pool.fetchval(
            "SELECT body FROM ota_director_metadata WHERE vin = $1 AND role = $2 AND version = $3",
            vin,
            role,
            version,
        )
        return bytes(body) if body is not None else None

    async def timestamp(self, vin: str, now: datetime) -> bytes:
        """The vehicle's current timestamp, after signing whatever its plan or the clock
        requires."""
        async with self._pool.acquire() as conn:
            root = await _root(conn)
            if root is None:
                raise DirectorNotInitializedError("the director has no root metadata yet")
            plan = await load_plan(conn, vin)
            current = await _vehicle(conn, vin)
            if current.needs_signing(plan.digest(), self.expiry, now):
                current = await self._sign(conn, vin, now)
            return current.versions[TIMESTAMP].body

    async def plan(self, vin: str) -> DirectorPlan:
        async with self._pool.acquire() as conn:
            return await load_plan(conn, vin)

    async def _sign(self, conn: asyncpg.Connection, vin: str, now: datetime) -> VehicleMetadata:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_CLASS, vin)
            # Again under the lock: another process may have signed while we waited.
            root = await _root(conn)
            assert root is not None
            plan = await load_plan(conn, vin)
            current = await _vehicle(conn, vin)
            if not current.needs_signing(plan.digest(), self.expiry, now):
                return current
            signers = await asyncio.to_thread(self._signers)
            written = sign_for_vehicle(
                root, current, plan, signers=signers, expiry=self.expiry, now=now
            )
            await _insert(conn, vin, written, plan.digest(), now)
            for w in written:
                log.debug("director: signed %s v%d for %s", w.role, w.version, vin)
            return await _vehicle(conn, vin)

    def _signers(self) -> dict[str, Sequence[Signer]]:
        return {role: self.keys.signers(role) for role in ONLINE_ROLES}


async def _root(conn: asyncpg.Connection, version: int | None = None) -> SignedMetadata | None:
    if version is None:
        row = await conn.fetchrow(
            "SELECT version, expires, body FROM ota_director_root ORDER BY version DESC LIMIT 1"
        )
    else:
        row = await conn.fetchrow(
            "SELECT version, expires, body FROM ota_director_root WHERE version = $1", version
        )
    if row is None:
        return None
    return SignedMetadata(ROOT, row["version"], row["expires"], bytes(row["body"]))


async def _vehicle(conn: asyncpg.Connection, vin: str) -> VehicleMetadata:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (role) role, version, expires, body, plan_digest"
        " FROM ota_director_metadata WHERE vin = $1 ORDER BY role, version DESC",
        vin,
    )
    versions = {
        r["role"]: SignedMetadata(r["role"], r["version"], r["expires"], bytes(r["body"]))
        for r in rows
    }
    digest = next((r["plan_digest"] for r in rows if r["plan_digest"] is not None), None)
    return VehicleMetadata(versions, digest)


async def _insert(
    conn: asyncpg.Connection,
    vin: str,
    written: Sequence[SignedMetadata],
    digest: str,
    now: datetime,
) -> None:
    await conn.executemany(
        "INSERT INTO ota_director_metadata"
        " (vin, role, version, expires, body, plan_digest, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (
                vin,
                w.role,
                w.version,
                w.expires,
                w.body,
                digest if w.role == "targets" else None,
                now,
            )
            for w in written
        ],
    )
