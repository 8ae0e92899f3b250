"""The image repository on PostgreSQL: loads the latest signed versions, runs one
``SigningRepository`` operation under a lock, stores what it wrote, serves stored bytes.

Every change happens in one transaction holding a transaction-level advisory lock, so any
number of processes (API instances publishing, OTA services refreshing, the CLI rotating keys)
produce one linear history per role, and a reader sees a new targets, snapshot and timestamp
together or not at all: a timestamp is never visible before the snapshot it names (TUF spec
section 6.2, consistent snapshots). ``(role, version)`` is the primary key as a second guard.

Online signers are read from the key directory at each change, not cached: after
``fleetlink ota keys rotate`` (another process) the next change signs with the new keys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import asyncpg

from ota.errors import RepositoryNotInitializedError
from ota.image_target import ImageTarget
from ota.keys import KeyDirectory
from ota.policy import ONLINE_ROLES, TARGETS, TIMESTAMP, ExpiryPolicy
from ota.signing_repository import SignedMetadata, SigningRepository
from ota.tuf_api import Signer, Targets

log = logging.getLogger(__name__)

_LOCK_KEY = 0x464C_4F54  # "FLOT": shared by every FleetLink process that signs OTA metadata
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Editing:
    """What one locked change works with: its connection (to update other tables in the
    same transaction) and the metadata core."""

    conn: asyncpg.Connection
    core: SigningRepository


class ImageRepository:
    def __init__(self, pool: asyncpg.Pool, keys: KeyDirectory, expiry: ExpiryPolicy) -> None:
        self._pool = pool
        self._keys = keys
        self.expiry = expiry

    # -- serving ----------------------------------------------------------------------------

    async def metadata(self, role: str, version: int | None = None) -> bytes | None:
        """Stored bytes of ``version`` of ``role``, or of its latest version."""
        if version is None:
            body = await self._pool.fetchval(
                "SELECT body FROM ota_tuf_metadata WHERE role = $1 ORDER BY version DESC LIMIT 1",
                role,
            )
        else:
            body = await self._pool.fetchval(
                "SELECT body FROM ota_tuf_metadata WHERE role = $1 AND version = $2",
                role,
                version,
            )
        return bytes(body) if body is not None else None

    async def current(self) -> dict[str, SignedMetadata]:
        async with self._pool.acquire() as conn:
            return await _latest(conn)

    async def image_targets(self) -> dict[str, ImageTarget]:
        """Every image the current targets metadata lists, by target path (what a director
        may name)."""
        current = await self.current()
        stored = current.get(TARGETS)
        if stored is None:
            raise RepositoryNotInitializedError("the image repository has no targets metadata")
        signed = stored.metadata().signed
        assert isinstance(signed, Targets)
        return {path: ImageTarget.from_target_file(t) for path, t in signed.targets.items()}

    # -- changing ---------------------------------------------------------------------------

    @asynccontextmanager
    async def editing(
        self, now: datetime, *, extra_signers: Mapping[str, Sequence[Signer]] | None = None
    ) -> AsyncIterator[Editing]:
        """One locked transaction: the caller edits ``core`` (and may write other tables on
        ``conn``); on a clean exit everything ``core`` signed is stored and committed.
        ``extra_signers`` are keys the service does not load: root keys and freshly generated
        keys, during a ceremony."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            # Read under the lock: a rotation that committed while we waited wrote its keys.
            signers = await asyncio.to_thread(self._online_signers)
            for role, extra in (extra_signers or {}).items():
                signers[role] = [*signers.get(role, []), *extra]
            core = SigningRepository(
                await _latest(conn), signers=signers, expiry=self.expiry, now=now
            )
            yield Editing(conn, core)
            await _insert(conn, core.written, now)
        for written in core.written:
            log.info(
                "signed %s v%d",
                written.role,
                written.version,
                extra={"role": written.role, "version": written.version},
            )

    async def change(self, now: datetime, operation: Callable[[SigningRepository], T]) -> T:
        async with self.editing(now) as editing:
            return operation(editing.core)

    async def refresh_if_due(self, now: datetime) -> tuple[str, ...]:
        """Re-sign the online roles close to expiry; returns the roles re-signed. Reads
        without the lock first, so the common case (nothing due) costs one query."""
        current = await self.current()
        if TIMESTAMP not in current:
            return ()
        if not any(self.expiry.is_due(role, current[role].expires, now) for role in ONLINE_ROLES):
            return ()
        return await self.change(now, lambda core: core.refresh_due())

    def _online_signers(self) -> dict[str, list[Signer]]:
        return {role: list(self._keys.signers(role)) for role in ONLINE_ROLES}


async def _latest(conn: asyncpg.Connection) -> dict[str, SignedMetadata]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (role) role, version, expires, body FROM ota_tuf_metadata"
        " ORDER BY role, version DESC"
    )
    return {
        r["role"]: SignedMetadata(r["role"], r["version"], r["expires"], bytes(r["body"]))
        for r in rows
    }


async def _insert(
    conn: asyncpg.Connection, written: Sequence[SignedMetadata], now: datetime
) -> None:
    if not written:
        return
    await conn.executemany(
        "INSERT INTO ota_tuf_metadata (role, version, expires, body, created_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(w.role, w.version, w.expires, w.body, now) for w in written],
    )
