"""Service clients for the OAuth2 client-credentials grant: a service centre's system (bound to
its centres) or an administration tool. The secret is generated here, shown once, stored as an
argon2 hash."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from api.security.passwords import Passwords
from api.security.principal import Principal, Role

CLIENT_SECRET_BYTES = 32


class ClientError(ValueError):
    code = "client_error"


class ClientExistsError(ClientError):
    code = "client_exists"

    def __init__(self, client_id: str) -> None:
        super().__init__(f"client {client_id} already exists")
        self.client_id = client_id


class ClientNotFoundError(ClientError):
    code = "client_not_found"

    def __init__(self, client_id: str) -> None:
        super().__init__(f"client {client_id} not found")
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class ClientRecord:
    client_id: str
    name: str
    role: Role
    centres: frozenset[str]
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewClient:
    record: ClientRecord
    secret: str


def _record(row: asyncpg.Record) -> ClientRecord:
    return ClientRecord(
        client_id=row["client_id"],
        name=row["name"],
        role=Role(row["role"]),
        centres=frozenset(row["centres"]),
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


_COLUMNS = "client_id, name, role, centres, created_at, disabled_at"


class ClientStore:
    def __init__(self, pool: asyncpg.Pool, passwords: Passwords) -> None:
        self._pool = pool
        self._passwords = passwords

    async def create(
        self, client_id: str, *, name: str, role: Role, centres: frozenset[str], now: datetime
    ) -> NewClient:
        secret = secrets.token_urlsafe(CLIENT_SECRET_BYTES)
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO api_clients (client_id, secret_hash, role, centres, name, created_at)"
                f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
                client_id,
                await self._passwords.hash(secret),
                role.value,
                sorted(centres),
                name,
                now,
            )
        except asyncpg.UniqueViolationError as exc:
            raise ClientExistsError(client_id) from exc
        assert row is not None
        return NewClient(_record(row), secret)

    async def disable(self, client_id: str, *, now: datetime) -> ClientRecord:
        row = await self._pool.fetchrow(
            "UPDATE api_clients SET disabled_at = coalesce(disabled_at, $2) WHERE client_id = $1"
            f" RETURNING {_COLUMNS}",
            client_id,
            now,
        )
        if row is None:
            raise ClientNotFoundError(client_id)
        return _record(row)

    async def authenticate(self, client_id: str, secret: str) -> Principal | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS}, secret_hash FROM api_clients"
            " WHERE client_id = $1 AND disabled_at IS NULL",
            client_id,
        )
        if not await self._passwords.verify(row["secret_hash"] if row else None, secret) or not row:
            return None
        record = _record(row)
        return Principal.client(record.client_id, record.role, record.centres)

    async def current(self, client_id: str) -> Principal | None:
        """The client as it stands now (role and centres from the table, not the token), or
        None once disabled or deleted: a disabled client's tokens stop working at once."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM api_clients WHERE client_id = $1 AND disabled_at IS NULL",
            client_id,
        )
        if row is None:
            return None
        record = _record(row)
        return Principal.client(record.client_id, record.role, record.centres)
